"""docs/extending.md's promises, tested the way a user follows them: the README's example activation
is added to a copy of the repository as exactly two files (a registry entry + a YAML), and the
tests that parametrise over the registry pass there unedited, and a run trains with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT
from test_pipeline import copy_repo


def _readme_example() -> tuple[str, str, str]:
    """(python block, yaml path, yaml text) of README's "Adding an activation"."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Adding an activation") :]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    yml = re.search(r"```yaml\n# (\S+)\n(.*?)```", section, re.S)
    return python, yml.group(1), yml.group(2)


def test_readme_example_is_two_files():
    python, yaml_path, yaml_text = _readme_example()
    assert re.search(r"register\(\s*Spec\(", python) and yaml_path.startswith("conf/activation/")
    name = re.search(r'Spec\(\s*"(\w+)"', python).group(1)
    assert yaml_text.strip() == f"name: {name}"


@pytest.mark.slow
def test_adding_the_readme_activation_needs_no_other_edit(tmp_path):
    python, yaml_path, yaml_text = _readme_example()
    name = re.search(r'Spec\(\s*"(\w+)"', python).group(1)
    repo = tmp_path / "repo"
    copy_repo(repo)
    reg = repo / "src" / "actlab" / "activations.py"
    src = reg.read_text()
    anchor = "NAMES: tuple[str, ...] = tuple(REGISTRY)"
    assert anchor in src
    reg.write_text(src.replace(anchor, python + "\n" + anchor))
    (repo / yaml_path).write_text(yaml_text)
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "ACTLAB_CONF": str(repo / "conf")}
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow",
            "tests/test_activations.py",
            "tests/test_depth.py",
            "tests/test_pipeline.py::test_sweep_configs_cover_what_the_study_needs",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert (
        f"[{name}]"
        in subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "--collect-only", "tests/test_activations.py"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )  # it was tested, not skipped
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "actlab.train",
            f"activation={name}",
            "trainer.max_epochs=1",
            "trainer.progress=quiet",
            f"run_dir={tmp_path / 'run'}",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "run" / "summary.json").exists()
