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


# Where the test sweep (conf/sweep/test.yaml, `name: test`) writes: its tables, figures, logs and book
# in results/sweeps/test/; its runs, shared by every sweep, in results/runs/<experiment>/<key>/.
TEST_RESULTS = Path("results") / "sweeps" / "test"
# Its experiments: the main one (MNIST-1D, first in the sweep: the timing job measures it) and claim (a)'s
TEST_MAIN, TEST_SUBSET = "mnist1d_mlp", "mnist_subset_mlp"


def runs_of(repo: Path, experiment: str = TEST_MAIN) -> Path:
    """results/runs/<experiment>/<key> of the one sweep that trained `experiment` in `repo`: the
    directory holding <activation>/seed<seed>/ (its key depends on the sweep's settings)."""
    keys = sorted((Path(repo) / "results" / "runs" / experiment).glob("*"))
    keys = [k for k in keys if k.is_dir() and len(k.name) == 8]
    assert len(keys) == 1, f"expected the runs of one sweep under results/runs/{experiment}, found {keys}"
    return keys[0]


def planned_run_dir(dry_run_output: str, activation: str, seed: int, experiment: str = TEST_MAIN) -> str:
    """results/runs/<experiment>/<key>/<activation>/seed<seed>, as a `snakemake -n` of the sweep plans it."""
    import re

    m = re.search(rf"results/runs/{experiment}/[0-9a-f]{{8}}/{activation}/seed{seed}(?=/)", dry_run_output)
    assert m, f"no run dir of {experiment}/{activation}/seed{seed} in the plan"
    return m.group(0)
