"""Interrupted training resumes from its checkpoint and ends bit-identical to an uninterrupted run.

In-process interruptions (an exception raised from a callback right after epoch N, the state a kill
leaves: last.ckpt from the last checkpoint epoch, metrics.csv rows beyond it) for a single run and for
a vectorised job of two parts; a checkpoint of another config or an unreadable one is not resumed;
and, end to end, `snakemake --cores all` killed with SIGKILL mid-sweep and rerun (slow).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import TEST_RESULTS

from actlab import fit, recorder, train

# tiny and schedule-sensitive: SGD with momentum and a cosine schedule (the lr and the momentum
# buffers must both be restored exactly), PReLU (a learned activation parameter), both probes on
FAST = (
    "trainer.progress=quiet",
    "trainer.threads=1",
    "model.width=32",
    "probes.grad_flow.every_n_steps=5",
    "optimizer=sgd",
    "optimizer.momentum=0.9",
    "optimizer.schedule=cosine",
)
TABLES = ("metrics.csv", "dead_units.csv", "grad_flow.csv")
# differ between an interrupted and an uninterrupted run by nature
VOLATILE = {
    "train_seconds",
    "seconds_per_epoch",
    "run_dir",
    "resumed_from_epoch",
    "vectorized",
    "git_commit",
    "git_dirty",
    "seconds",
}


class Interrupted(Exception):
    """Stands for a kill: raised from a callback, it leaves what a kill after that epoch leaves."""


def interrupt_after(monkeypatch, cls, epoch: int, only=lambda self: True):
    """Make ``cls.on_train_epoch_end`` raise right after epoch ``epoch`` (1-based) has been recorded."""
    original = cls.on_train_epoch_end

    def hook(self, trainer, pl_module):
        original(self, trainer, pl_module)
        if trainer.current_epoch + 1 == epoch and only(self):
            raise Interrupted

    monkeypatch.setattr(cls, "on_train_epoch_end", hook)


def outputs(run_dir: Path):
    summary = {k: v for k, v in json.loads((run_dir / "summary.json").read_text()).items() if k not in VOLATILE}
    tables = {t: pd.read_csv(run_dir / t).drop(columns=list(VOLATILE), errors="ignore") for t in TABLES}
    return summary, tables


def assert_same_run(a: Path, b: Path) -> None:
    (sa, ta), (sb, tb) = outputs(a), outputs(b)
    assert json.dumps(sa, sort_keys=True) == json.dumps(sb, sort_keys=True)  # exact floats, NaN-safe
    for t in TABLES:
        assert len(ta[t]) > 0, t
        pd.testing.assert_frame_equal(ta[t], tb[t], check_exact=True, obj=f"{b / t}")


@pytest.mark.numerics
def test_interrupted_run_resumes_bit_identical(compose, monkeypatch, tmp_path):
    overrides = (*FAST, "activation=prelu", "trainer.max_epochs=7", "trainer.checkpoint_every_n_epochs=2")
    train.run(compose(*overrides, f"run_dir={tmp_path / 'a'}"))
    assert not (tmp_path / "a" / "last.ckpt").exists()  # deleted once the run is complete

    interrupt_after(monkeypatch, recorder.VecRecorder, 5)
    # metrics.csv rewritten at every epoch (by default at most every 30 s): rows beyond the checkpoint
    # are on disk when the run is killed, and the resume must redo them, not append to them
    monkeypatch.setattr(recorder, "METRICS_FLUSH_SECONDS", 0.0)
    with pytest.raises(Interrupted):
        train.run(compose(*overrides, f"run_dir={tmp_path / 'b'}"))
    monkeypatch.undo()
    b = tmp_path / "b"
    assert (b / "last.ckpt").is_file() and not (b / "summary.json").exists()
    assert pd.read_csv(b / "metrics.csv")["epoch"].tolist() == [1, 2, 3, 4, 5]  # epoch 5: after the checkpoint

    s = train.run(compose(*overrides, f"run_dir={b}"))
    assert s["resumed_from_epoch"] == 4 and s["epochs"] == 7
    assert pd.read_csv(b / "metrics.csv")["epoch"].tolist() == list(range(1, 8))  # epoch 5 redone, not doubled
    assert_same_run(tmp_path / "a", b)
    assert not (b / "last.ckpt").exists()


@pytest.mark.numerics
def test_interrupted_vectorised_job_resumes_bit_identical(compose, monkeypatch, tmp_path):
    """Two vectorised parts (vectorize_max_k=3 for 4 runs: 2 + 2, prelu's then relu's): interrupted in the
    second, the rerun resumes the first from its final checkpoint (no training at all) and the second from
    its last checkpoint."""
    overrides = (
        *FAST,
        "activations=[prelu,relu]",
        "seeds=[0,1]",
        "vectorize_max_k=3",
        "trainer.max_epochs=7",
        "trainer.checkpoint_every_n_epochs=2",
    )
    job = lambda name: compose(*overrides, f"run_dir={tmp_path / name}/${{activation.name}}/seed${{seed}}")  # noqa: E731
    ref = train.run_seeds(job("a"))

    second = lambda rec: rec.cfgs[0].activation.name == "relu"  # noqa: E731
    interrupt_after(monkeypatch, recorder.VecRecorder, 5, only=second)  # the second part
    with pytest.raises(Interrupted):
        train.run_seeds(job("b"))
    monkeypatch.undo()
    ckpts = sorted(p.name for p in (tmp_path / "b").rglob("*.ckpt"))
    assert ckpts == ["last-part1of2.ckpt", "last-part2of2.ckpt"]  # in the job's dir (here the default one)

    res = train.run_seeds(job("b"))
    assert [s["resumed_from_epoch"] for s in res] == [7, 7, 4, 4]  # part 1 finished; part 2 after epoch 4
    assert [s["vectorized"]["k"] for s in res] == [2, 2, 2, 2]
    for r, s in zip(ref, res):
        assert_same_run(Path(r["run_dir"]), Path(s["run_dir"]))
    assert not list((tmp_path / "b").rglob("*.ckpt"))


def test_diverged_run_resumes_from_its_final_checkpoint(compose, monkeypatch, tmp_path):
    """Interrupted after training (before summary.json): the rerun trains nothing, not even an epoch past
    the divergence (the checkpoint says training had stopped)."""
    overrides = (*FAST, "optimizer.lr=1e12", "trainer.max_epochs=5")
    a = train.run(compose(*overrides, f"run_dir={tmp_path / 'a'}"))
    assert a["diverged"] and a["epochs"] < 5

    def fail(*args, **kwargs):
        raise Interrupted

    monkeypatch.setattr(fit, "make_summary", fail)
    with pytest.raises(Interrupted):
        train.run(compose(*overrides, f"run_dir={tmp_path / 'b'}"))
    monkeypatch.undo()
    b = train.run(compose(*overrides, f"run_dir={tmp_path / 'b'}"))
    assert b["diverged"] and b["resumed_from_epoch"] == b["epochs"] == a["epochs"]
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_checkpoint_of_another_config_is_not_resumed(compose, monkeypatch, tmp_path, capsys):
    overrides = (*FAST, "trainer.max_epochs=4", "trainer.checkpoint_every_n_epochs=1", f"run_dir={tmp_path}")
    interrupt_after(monkeypatch, recorder.VecRecorder, 3)
    with pytest.raises(Interrupted):
        train.run(compose(*overrides))
    monkeypatch.undo()
    capsys.readouterr()
    # settings outside the hash (checkpoint interval, progress display) keep the checkpoint valid ...
    interrupt_after(monkeypatch, recorder.VecRecorder, 4)
    with pytest.raises(Interrupted):
        train.run(compose(*overrides, "trainer.checkpoint_every_n_epochs=3", "trainer.progress=bar"))
    monkeypatch.undo()
    assert "not resuming" not in capsys.readouterr().err
    # ... a different learning rate does not: one line, then a fresh start
    s = train.run(compose(*overrides, "optimizer.lr=0.02"))
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err == [
        f"note: not resuming from {tmp_path / 'last.ckpt'}: it was written for a different config; starting over"
    ]
    assert s["resumed_from_epoch"] == 0 and pd.read_csv(tmp_path / "metrics.csv")["epoch"].tolist() == [1, 2, 3, 4]


class Payload:
    """A pickle that runs code when unpickled: what a tampered checkpoint could hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("kind", ["truncated", "code"])
def test_unreadable_or_unsafe_checkpoint_is_not_loaded(compose, tmp_path, capsys, kind):
    """Checkpoints are read with weights_only=True: a pickle that would run code is refused, not run."""
    cfg = compose(*FAST, "trainer.max_epochs=2", f"run_dir={tmp_path / 'run'}")
    ckpt = tmp_path / "run" / "last.ckpt"
    ckpt.parent.mkdir()
    marker = tmp_path / "pwned"
    if kind == "truncated":
        ckpt.write_bytes(b"PK\x03\x04 not a whole checkpoint")
    else:
        meta = {"config_hash": train.config_hash([cfg]), "epoch": 1}
        torch.save({"actlab": meta, "payload": Payload(marker)}, ckpt)
    s = train.run(cfg)
    assert not marker.exists()
    assert s["resumed_from_epoch"] == 0 and s["epochs"] == 2
    assert "it cannot be read" in capsys.readouterr().err


def test_no_checkpoints_when_switched_off(compose, monkeypatch, tmp_path):
    interrupt_after(monkeypatch, recorder.VecRecorder, 2)
    with pytest.raises(Interrupted):
        train.run(compose(*FAST, "trainer.max_epochs=3", "trainer.checkpoint_every_n_epochs=0", f"run_dir={tmp_path}"))
    assert not list(tmp_path.glob("*.ckpt"))


# -----------------------------------------------------------------------------
# end to end: SIGKILL to a running `snakemake --cores all`, then the plain rerun


KILL_EPOCHS = 100
# wall-clock and bookkeeping columns: everything else of summary.csv must match to the bit
PIPELINE_VOLATILE = ["train_seconds", "seconds_per_epoch", "vectorized.job_train_seconds", "resumed_from_epoch"]


def _sweep(repo: Path) -> None:
    sweep = yaml.safe_load((repo / "conf" / "sweep" / "test.yaml").read_text())
    sweep["experiments"] = sweep["experiments"][:1]  # the main experiment (MNIST-1D) alone: 6 runs, not 12
    sweep["overrides"] = [
        f"trainer.max_epochs={KILL_EPOCHS}",
        "trainer.checkpoint_every_n_epochs=5",
        "probes.grad_flow.every_n_steps=5",
    ]
    (repo / "kill.yaml").write_text(yaml.safe_dump(sweep))


def _events(log: Path) -> list[str]:
    """The resume events of a run's append-only train.log, in order."""
    out = []
    for line in log.read_text().splitlines() if log.exists() else []:
        for event in ("training from scratch", "resuming from", "saved after epoch"):
            if event in line:
                out.append(event)
    return out


@pytest.mark.slow
def test_killed_sweep_resumes_without_loss(tmp_path):
    from test_pipeline import copy_repo, snakemake

    target = [f"{TEST_RESULTS}/summary.csv", "--cores", "all", "--configfile", "kill.yaml"]
    ref = copy_repo(tmp_path / "ref")
    _sweep(ref)
    res = snakemake(*target, cwd=ref)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    repo = copy_repo(tmp_path / "killed")
    _sweep(repo)
    env = {**os.environ, "ACTLAB_CONF": str(repo / "conf"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *target],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    jobs = repo / TEST_RESULTS / "logs" / "train"
    try:  # kill the whole process group (snakemake and its training jobs) once a checkpoint exists
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline and not list(jobs.rglob("*.ckpt")):
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    at_kill = {}
    for ckpt in jobs.rglob("*.ckpt"):
        try:
            at_kill[ckpt] = torch.load(ckpt, weights_only=True, map_location="cpu")["actlab"]["epoch"]
        except Exception:  # noqa: BLE001 -- (cannot happen: written atomically)
            pytest.fail(f"{ckpt} is not a complete checkpoint")
    assert any(0 < e < KILL_EPOCHS for e in at_kill.values()), at_kill
    finished = {p: p.stat().st_mtime_ns for p in (repo / "results" / "runs").rglob("summary.json")}
    assert not (repo / TEST_RESULTS / "summary.csv").exists()

    # The killed snakemake left its lock: the plain rerun says so (one remedy: --unlock) ...
    res = snakemake(*target, cwd=repo)
    assert res.returncode != 0 and "--unlock" in res.stdout + res.stderr
    assert snakemake("--unlock", "--configfile", "kill.yaml", cwd=repo).returncode == 0
    # ... then the same command finishes the sweep (profiles/default: rerun-incomplete)
    res = snakemake(*target, cwd=repo)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    got = pd.read_csv(repo / TEST_RESULTS / "summary.csv")
    want = pd.read_csv(ref / TEST_RESULTS / "summary.csv")
    assert len(got) == len(want) == 6
    resumed = dict(zip(zip(got["activation"], got["seed"]), got["resumed_from_epoch"]))
    assert set(resumed.values()) - {0}, resumed  # some runs resumed ...
    assert any(0 < e < KILL_EPOCHS for e in resumed.values()), resumed  # ... from mid-training
    pd.testing.assert_frame_equal(
        got.drop(columns=PIPELINE_VOLATILE), want.drop(columns=PIPELINE_VOLATILE), check_exact=True
    )
    for curve in ("metrics", "dead_units", "grad_flow"):  # every row once: nothing doubled or half-written
        a, b = (pd.read_parquet(r / TEST_RESULTS / "curves" / f"{curve}.parquet") for r in (repo, ref))
        pd.testing.assert_frame_equal(
            a.drop(columns=["seconds"], errors="ignore"), b.drop(columns=["seconds"], errors="ignore"), check_exact=True
        )
    for path, mtime in finished.items():  # a job that had finished was not run again
        assert path.stat().st_mtime_ns == mtime, path
    for run in (repo / "results" / "runs").glob("*/*/*/seed*"):  # no checkpointed work thrown away
        events = _events(run / "train.log")
        first_save = events.index("saved after epoch") if "saved after epoch" in events else len(events)
        assert "training from scratch" not in events[first_save:], (run, events)
    assert not list((repo / "results").rglob("*.ckpt"))  # checkpoints deleted once their job is done
    shutil.rmtree(tmp_path / "ref", ignore_errors=True)


@pytest.mark.numerics
def test_interrupted_part_with_own_splits_and_lrs_resumes_bit_identical(compose, monkeypatch, tmp_path):
    """One vectorised part of 4 models with a split per seed and a learning rate per activation (the
    default study's kind): interrupted, resumed from its checkpoint, bit-identical to an uninterrupted job."""
    table = tmp_path / "lr.csv"
    pd.DataFrame({"activation": ["prelu", "relu"], "lr": [0.01, 0.003], "chosen": [True, True]}).to_csv(table)
    overrides = (
        *FAST,
        "activations=[prelu,relu]",
        "seeds=[0,1]",
        "data.split_seed=${seed}",
        f"lr_table={table}",
        "trainer.max_epochs=5",
        "trainer.checkpoint_every_n_epochs=2",
    )
    job = lambda name: compose(*overrides, f"run_dir={tmp_path / name}/${{activation.name}}/seed${{seed}}")  # noqa: E731
    ref = train.run_seeds(job("a"))
    assert [(s["vectorized"]["k"], s["lr"]) for s in ref] == [(4, 0.01), (4, 0.01), (4, 0.003), (4, 0.003)]
    interrupt_after(monkeypatch, recorder.VecRecorder, 3)
    with pytest.raises(Interrupted):
        train.run_seeds(job("b"))
    monkeypatch.undo()
    res = train.run_seeds(job("b"))
    assert [s["resumed_from_epoch"] for s in res] == [2, 2, 2, 2]
    for r, s in zip(ref, res):
        assert_same_run(Path(r["run_dir"]), Path(s["run_dir"]))
