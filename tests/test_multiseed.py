"""Several seeds in one process (`seeds=[...]`) = one `seed=S` run per seed, same outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from actlab.train import job_dir

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["trainer.max_epochs=2", "trainer.threads=1", "trainer.progress=quiet", "activation=gelu"]
# Keys of summary.json that legitimately differ between two runs of the same experiment.
VOLATILE = {"train_seconds", "seconds_per_epoch", "run_dir", "git_commit", "git_dirty"}  # others commit meanwhile


def train(*overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    p = subprocess.run(
        [sys.executable, "-m", "actlab.train", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multiseed")
    # vectorize=false: the seeds one after the other, bit-identical to separate runs (the vectorised
    # trainer agrees to fp tolerance: tests/test_vectorized.py)
    train("seeds=[0,2]", f"run_dir={tmp}/multi/seed${{seed}}", "vectorize=false", *COMMON)
    for s in (0, 2):
        train(f"seed={s}", f"run_dir={tmp}/single/seed${{seed}}", *COMMON)
    return tmp


@pytest.mark.parametrize("seed", [0, 2])
def test_each_seed_is_a_complete_single_run(runs, seed):
    multi, single = runs / "multi" / f"seed{seed}", runs / "single" / f"seed{seed}"
    for name in (
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "train.log",
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
    ):
        assert (multi / name).is_file(), name
    cm, cs = (yaml.safe_load((d / "config.yaml").read_text()) for d in (multi, single))
    assert cm["seed"] == seed and cm["seeds"] is None and cm["run_dir"] == str(multi)
    assert cm.pop("vectorize") is False  # how the job ran is recorded
    for key in ("run_dir", "vectorize"):
        cm.pop(key, None), cs.pop(key, None)
    assert cm == cs
    # same numbers as the separate run (timing columns aside)
    mm, ms = (pd.read_csv(d / "metrics.csv").drop(columns="seconds") for d in (multi, single))
    pd.testing.assert_frame_equal(mm, ms, check_exact=True)
    sm, ss = (json.loads((d / "summary.json").read_text()) for d in (multi, single))
    assert sm["seed"] == seed and sm["run_dir"] == str(multi)
    assert {k: v for k, v in sm.items() if k not in VOLATILE} == {k: v for k, v in ss.items() if k not in VOLATILE}
    assert yaml.safe_load((multi / ".hydra" / "overrides.yaml").read_text())[:2] == ["activation=gelu", f"seed={seed}"]


def test_seeds_differ(runs):
    a, b = (pd.read_csv(runs / "multi" / f"seed{s}" / "metrics.csv") for s in (0, 2))
    assert not a["train_loss"].equals(b["train_loss"])


def test_hydra_files_go_to_the_job_dir(runs):
    job = runs / "multi" / "_jobs" / "seeds0_2"
    assert (job / ".hydra" / "hydra.yaml").is_file()
    assert not (runs / "multi" / "seed0" / ".hydra" / "hydra.yaml").exists()


def test_job_dir_names():
    assert job_dir("runs/d/m/a/seed0", None) == "runs/d/m/a/seed0"
    assert job_dir("runs/d/m/a/seed0", [0, 1, 2, 3, 4]) == "runs/d/m/a/_jobs/seeds0-4"
    assert job_dir("runs/d/m/a/seed3", [3, 1]) == "runs/d/m/a/_jobs/seeds3_1"
    long = job_dir("r/seed0", list(range(0, 40, 2)))
    assert long.startswith("r/_jobs/seeds0-38_n20_") and long == job_dir("r/seed0", list(range(0, 40, 2)))


def test_run_dir_without_seed_is_rejected(tmp_path):
    p = train("seeds=[0,1]", f"run_dir={tmp_path}/same", *COMMON, check=False)
    assert p.returncode == 2 and "run_dir must depend on the seed" in p.stderr
    assert not (tmp_path / "same" / "summary.json").exists()


def test_bad_seeds_are_rejected(tmp_path):
    p = train("seeds=[0,0]", f"run_dir={tmp_path}/seed${{seed}}", *COMMON, check=False)
    assert p.returncode == 2 and "distinct" in p.stderr
    p = train("seeds=5", f"run_dir={tmp_path}/seed${{seed}}", *COMMON, check=False)
    assert p.returncode == 2 and "list of integers" in p.stderr


def test_lrs_train_each_rate_as_its_own_run(tmp_path):
    """lrs=[...]: every run at each rate, one run dir per rate, each = the run `optimizer.lr=<rate>` alone
    (vectorize=false: one after the other, bit-identical; the vectorised path agrees to fp tolerance)."""
    pattern = f"run_dir={tmp_path}/multi/lr${{optimizer.lr}}/seed${{seed}}"
    p = train("lrs=[0.001,0.01]", "seeds=[0]", pattern, "vectorize=false", *COMMON)
    assert sorted(d.name for d in (tmp_path / "multi").iterdir()) == ["lr0.001", "lr0.01"]
    assert "2lrs_seeds0-0" in {d.name for d in (tmp_path / "multi" / "lr0.001" / "_jobs").iterdir()}
    train("optimizer.lr=0.01", "seed=0", f"run_dir={tmp_path}/single", *COMMON)
    multi = json.loads((tmp_path / "multi" / "lr0.01" / "seed0" / "summary.json").read_text())
    single = json.loads((tmp_path / "single" / "summary.json").read_text())
    assert multi["lr"] == 0.01
    assert {k: v for k, v in multi.items() if k not in VOLATILE | {"vectorized"}} == {
        k: v for k, v in single.items() if k not in VOLATILE | {"vectorized"}
    }
    assert "test_acc" in p.stderr


@pytest.mark.parametrize(
    ("lrs", "run_dir", "message"),
    [
        ("lrs=[0.001,0.01]", "seed${seed}", "must depend on the learning rate"),
        ("lrs=[0.001,0.001]", "lr${optimizer.lr}/seed${seed}", "lrs must be distinct"),
        ("lrs=[]", "lr${optimizer.lr}/seed${seed}", "non-empty list of positive"),
        ("lrs=[0.01,-1]", "lr${optimizer.lr}/seed${seed}", "non-empty list of positive"),
    ],
)
def test_bad_lrs_are_rejected(tmp_path, lrs, run_dir, message):
    p = train(lrs, "seeds=[0]", f"run_dir={tmp_path}/{run_dir}", *COMMON, check=False)
    assert p.returncode == 2 and message in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert not any(tmp_path.iterdir())
