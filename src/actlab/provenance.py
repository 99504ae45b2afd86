"""What a run ran with: the library versions and the git state of the code (summary.json, the
checkpoint's config hash)."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path


@functools.cache  # one process runs one version of the code: ask git once, not twice per run
def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the repository the code runs from; ('unknown', False) outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            != ""
        )
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def versions() -> dict:
    import pytorch_lightning as pl  # imported here: the config checks before a run stay fast
    import torch

    import actlab

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "actlab": actlab.__version__,
    }
