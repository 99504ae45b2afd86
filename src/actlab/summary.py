"""A run's summary.json (its fields; written by actlab.integrity), its one-line report, and finding a
finished run in a run dir."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml
from omegaconf import DictConfig

from actlab import activations, integrity
from actlab.config import act_params, comparable
from actlab.errors import ConfigError
from actlab.provenance import git_state, versions


def make_summary(
    cfg: DictConfig,
    task: str,
    hist: list[dict],
    test: dict,
    diverged: bool,
    train_seconds: float,
    n_params: int,
    device: str,
    resumed_from_epoch: int = 0,
    data_provenance: dict | None = None,
) -> dict:
    """summary.json of one run (written for each of its runs by actlab.fit.fit_many).
    ``data_provenance``: the loader's ``Splits.provenance`` (generating args, SHA-256, split sizes)."""
    commit, dirty = git_state()
    val_key = "val_acc" if task == "classification" else "val_loss"
    vals = [r[val_key] for r in hist if math.isfinite(r.get(val_key, math.nan))]
    best = (max if val_key == "val_acc" else min)(vals) if vals else math.nan
    return {
        "experiment": str(cfg.experiment),
        "activation": cfg.activation.name,
        "act_params": act_params(cfg),
        "seed": cfg.seed,
        "dataset": cfg.data.name,
        "split_seed": cfg.data.split_seed,
        "task": task,
        "model": cfg.model.name,
        "depth": cfg.model.depth,
        "width": cfg.model.width,
        "init": cfg.model.init or activations.spec(cfg.activation.name).init,
        "optimizer": cfg.optimizer.name,
        "lr": cfg.optimizer.lr,
        "batch_size": cfg.data.batch_size,
        "test_acc": test.get("test_acc", math.nan),
        "test_loss": test.get("test_loss", math.nan),
        "best_val_acc": best if val_key == "val_acc" else math.nan,
        "best_val_loss": min((r["val_loss"] for r in hist), default=math.nan),
        "epochs": len(hist),
        "max_epochs": cfg.trainer.max_epochs,
        "diverged": diverged,
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / max(len(hist), 1),
        "n_params": n_params,
        "resumed_from_epoch": resumed_from_epoch,
        "device": device,
        "versions": versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "run_dir": str(cfg.run_dir),
        "data_provenance": data_provenance or {},
    }


def finished_summary(c: DictConfig) -> dict | None:
    """The summary of the finished run of config `c` in its run dir, or None: summary.json is there,
    its integrity record verifies (actlab.integrity) and its config.yaml is `c` (but for
    SAME_RUN_IGNORED). A finished run of ANOTHER config there is refused unless `overwrite=true`: a
    rerun must not silently replace a result."""
    run_dir = Path(c.run_dir)
    if not (run_dir / "summary.json").is_file():
        return None
    try:
        integrity.verify(run_dir)
        stored = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (integrity.IntegrityError, OSError, yaml.YAMLError):
        return None  # damaged or incomplete: trained again
    if comparable(stored) == comparable(c):
        return json.loads((run_dir / "summary.json").read_text())
    if c.get("overwrite"):
        return None
    raise ConfigError(
        f"run dir {str(run_dir)!r} holds a finished run of another config; pass overwrite=true "
        f"to train this one there, or choose another run_dir"
    )


def report_line(summary: dict, before: bool = False) -> str:
    """One line per run: where it is and its test metric."""
    if summary.get("diverged"):
        metric = f"diverged after {summary['epochs']} epochs"
    elif summary.get("task") == "regression":
        metric = f"test_loss {summary['test_loss']:.4g} ({summary['epochs']} epochs)"
    else:
        metric = f"test_acc {100 * summary['test_acc']:.2f}% ({summary['epochs']} epochs)"
    return f"run {summary['run_dir']}: {metric}" + (
        "; finished before, not retrained (overwrite=true retrains)" if before else ""
    )
