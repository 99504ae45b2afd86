"""Every value check of a training job that touches no file and imports neither torch nor Lightning.

`python -m actlab.train` runs them before Hydra makes a dir (actlab.cli), and the pipeline runs them
on each experiment's composed config before it builds the DAG (workflow/rules/common.smk): there,
importing the trainer (torch + Lightning, ~10 s on a 2-core CPU) would delay every `snakemake`
command, `-n` included, by that much.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from actlab.config import _holds, is_multi, job_configs, validate
from actlab.errors import ConfigError
from actlab.schema import PROBE_RANGES


def check_probes(cfg_probes) -> None:
    """The ``probes`` config group's ranges (actlab.schema.PROBE_RANGES), for each enabled probe
    (actlab.probes.callbacks builds the probes from them; their types the schema has checked)."""
    for key, (ok, what) in PROBE_RANGES.items():
        probe, name = key.split(".")[1:]
        node = cfg_probes.get(probe) if cfg_probes is not None else None
        if node is not None and node.get("enabled", False):
            value = OmegaConf.select(node, name)
            if not _holds(ok, value):
                raise ConfigError(f"{key} {what}, got {value!r}")


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
    if mode is False:
        return False
    ok, why = vectorizable(cfg)
    if mode is True and not ok:
        raise ConfigError(f"vectorize=true but cannot vectorise: {why}")
    return ok and (mode is True or k >= 2)


def check_values(cfg: DictConfig) -> list[DictConfig]:
    """Every value check of a job (the values of every run, the seeds/activations/lrs lists, the
    vectorisation and probe settings), touching no file; returns the job's run configs. `cfg` comes
    from actlab.config.compose (the CLI and the pipeline both), which has checked every key is set."""
    multi = is_multi(cfg)
    cfgs = job_configs(cfg) if multi else [cfg]
    if multi:
        use_vectorized(cfg, len(cfgs))
    for c in cfgs:
        validate(c)
        check_probes(c.probes)
    return cfgs
