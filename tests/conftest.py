import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def compose():
    """Compose the real Hydra config with overrides (as `python -m actlab.train` would)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from actlab.train import CONF_DIR

    def _compose(*overrides):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=list(overrides))

    return _compose


def run_cli(*args, cwd=None, timeout=300, module="actlab.train"):
    """Run `python -m <module> args...` as a user would; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
