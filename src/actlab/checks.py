"""Every value check of a training job that touches no file and imports neither torch nor Lightning.

`python -m actlab.train` runs them before Hydra makes a dir (actlab.cli), and the pipeline runs them
on each experiment's composed config before it builds the DAG (workflow/rules/common.smk): there,
importing the trainer (torch + Lightning, ~10 s on a 2-core CPU) would delay every `snakemake`
command, `-n` included, by that much.
"""

from __future__ import annotations

import math

from omegaconf import DictConfig

from actlab.config import _int, is_multi, job_configs, validate
from actlab.errors import ConfigError


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _pos_int(v) -> bool:
    return _int(v) and v >= 1


def _nonneg(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 and not math.isnan(v)


def check_probes(cfg_probes) -> None:
    """The ``probes`` config group's values (actlab.probes.callbacks builds the probes from them)."""
    du = cfg_probes.get("dead_units") if cfg_probes is not None else None
    if du is not None and du.get("enabled", False):
        every, size = du.get("every_n_epochs", 1), du.get("probe_size", 512)
        tol, tau, flush = du.get("tol", 1e-6), du.get("tau", 0.1), du.get("flush_seconds", 30.0)
        _check(_pos_int(every), f"probes.dead_units.every_n_epochs must be an integer >= 1, got {every!r}")
        _check(_pos_int(size), f"probes.dead_units.probe_size must be an integer >= 1, got {size!r}")
        _check(_nonneg(tol), f"probes.dead_units.tol must be a number >= 0, got {tol!r}")
        _check(_nonneg(tau), f"probes.dead_units.tau must be a number >= 0, got {tau!r}")
        _check(_nonneg(flush), f"probes.dead_units.flush_seconds must be a number >= 0, got {flush!r}")
    gf = cfg_probes.get("grad_flow") if cfg_probes is not None else None
    if gf is not None and gf.get("enabled", False):
        every, flush = gf.get("every_n_steps", 25), gf.get("flush_seconds", 30.0)
        _check(_pos_int(every), f"probes.grad_flow.every_n_steps must be an integer >= 1, got {every!r}")
        _check(_nonneg(flush), f"probes.grad_flow.flush_seconds must be a number >= 0, got {flush!r}")


def vectorizable(cfg: DictConfig) -> tuple[bool, str]:
    """(True, '') if cfg's model can be trained by the batched engine (actlab.fit), else (False, why)."""
    if cfg.model.name not in ("mlp", "cnn"):
        return False, f"model {cfg.model.name!r} (the MLP and the CNN are vectorised)"
    if str(cfg.trainer.precision) in ("16-mixed", "16", "16-true"):
        return False, "fp16 precision needs a gradient scaler per model (use bf16-mixed, 32-true or 64-true)"
    return True, ""


def use_vectorized(cfg: DictConfig, k: int) -> bool:
    """`vectorize`: true = one vectorised run (error if the model cannot be), false = the seeds one
    after the other, auto = vectorised when supported and k >= 2."""
    mode = cfg.get("vectorize", "auto")
    mode = {"true": True, "false": False}.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in ("auto", True, False):
        raise ConfigError(f"vectorize must be auto, true or false, got {cfg.get('vectorize')!r}")
    max_k = cfg.get("vectorize_max_k")
    if max_k is not None and not (_int(max_k) and max_k >= 1):
        raise ConfigError(f"vectorize_max_k must be an integer >= 1 or null, got {max_k!r}")
    steps = cfg.trainer.get("steps_per_call", 1)
    if not (_int(steps) and steps >= 1):
        raise ConfigError(f"trainer.steps_per_call must be an integer >= 1, got {steps!r}")
    if mode is False:
        return False
    ok, why = vectorizable(cfg)
    if mode is True and not ok:
        raise ConfigError(f"vectorize=true but cannot vectorise: {why}")
    return ok and (mode is True or k >= 2)


def check_values(cfg: DictConfig) -> list[DictConfig]:
    """Every value check of a job (the values of every run, the seeds/activations/lrs lists, the
    vectorisation and probe settings), touching no file; returns the job's run configs."""
    multi = is_multi(cfg)
    cfgs = job_configs(cfg) if multi else [cfg]
    if multi:
        use_vectorized(cfg, len(cfgs))
    for c in cfgs:
        validate(c)
        check_probes(c.probes)
    return cfgs
