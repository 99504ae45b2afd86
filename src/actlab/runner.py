"""A training job: one run, or every seed x activation of `seeds=[...]` / `activations=[...]`, each
with its own run dir and summary.json, trained as engine runs of up to ``vectorize_max_k`` models
(actlab.fit), or one after the other with ``vectorize=false``.

Where things go: one run writes everything into its run dir (= Hydra's output dir, `hydra.run.dir`).
A job of several runs writes each run's files into that run's dir (``run_dir`` resolved per seed and
activation: its config.yaml, metrics, probes, train.log, .hydra/config.yaml and overrides.yaml, as
its run alone would); Hydra's files of the whole job (.hydra/hydra.yaml, the job's train.log) and the
job's stacked resume checkpoint go to Hydra's output dir.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path

import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from actlab import atomic, data, fit
from actlab.checks import use_vectorized
from actlab.config import data_key, default_job_dir, is_multi, job_configs, validate
from actlab.rundir import check_writable
from actlab.summary import finished_summary, report_line

CHECKPOINT = "last.ckpt"


def run(cfg: DictConfig, keep_checkpoint: bool = False, splits=None) -> dict:
    """Train and test one model; return the summary (also written to summary.json). One run is K=1
    of the batched engine (actlab.fit.fit_many): the same module, recorder, checkpoint and
    summary as a job of several runs.

    Resumes from ``<run_dir>/last.ckpt`` when it holds a checkpoint of this config; deletes it once
    summary.json is written, unless ``keep_checkpoint`` (run_seeds deletes it when the whole job ends).
    ``splits``: the data of ``cfg.data``, already loaded (else loaded here)."""
    validate(cfg)
    run_dir = Path(cfg.run_dir)
    check_writable(run_dir)
    if splits is None:
        splits = data.load(cfg.data)  # verified before anything is written: bad data leaves no run behind
    (summary,) = fit.fit_many([cfg], checkpoint=run_dir / CHECKPOINT, splits=splits, job=False)
    if not keep_checkpoint:
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
    return summary


def run_seeds(cfg: DictConfig) -> list[dict]:
    """Train every seed of ``cfg.seeds`` (or the one ``cfg.seed``) for every activation of
    ``cfg.activations`` (or the one ``cfg.activation``); one run dir and summary each. A job whose
    runs have all finished with this config is not trained again (finished_summary); a job with some
    unfinished runs trains as a whole, as first planned (the same vectorised parts, so a resumed part
    is bit-identical; finished parts resume from their final checkpoint). One line per run on stderr."""
    multi = is_multi(cfg)
    cfgs = job_configs(cfg) if multi else [cfg]
    if not cfg.get("overwrite"):
        done = [s for c in cfgs if (s := finished_summary(c)) is not None]
        if len(done) == len(cfgs):
            for s in done:
                print(report_line(s, before=True), file=sys.stderr, flush=True)
            return done
    if not multi:
        summary = run(cfg)
        print(report_line(summary), file=sys.stderr, flush=True)
        return [summary]
    return _train_many(cfg, cfgs)


def _train_many(cfg: DictConfig, cfgs: list[DictConfig]) -> list[dict]:
    """The runs `cfgs` of the multi-run job `cfg`: vectorised parts, or one after the other."""
    vectorize = use_vectorized(cfg, len(cfgs))
    for c in cfgs:  # fail before training anything
        validate(c)
    # Loaded (downloaded, verified) once per distinct data config, before any run dir is made: bad data
    # leaves nothing behind. Runs differ in data only when the split follows the seed (data.split_seed: ${seed}).
    splits_of = {}
    for c in cfgs:
        if data_key(c) not in splits_of:
            splits_of[data_key(c)] = data.load(c.data)
    for c in cfgs:
        check_writable(Path(c.run_dir))
    for c in cfgs:
        _hydra_files(c)
    summaries, checkpoints = [], []
    if vectorize:
        parts = vectorized_parts(cfg, cfgs, {key: sp.sizes() for key, sp in splits_of.items()})
        for i, part in enumerate(parts):
            # The stacked checkpoint of a vectorised run covers several run dirs: it lives in the
            # job's own dir (hydra.run.dir), one file per vectorised part.
            name = CHECKPOINT if len(parts) == 1 else f"last-part{i + 1}of{len(parts)}.ckpt"
            checkpoints.append(_job_output_dir(cfg) / name)
            with _seed_logs(part):
                splits = [splits_of[data_key(c)] for c in part]  # each run's own split
                summaries += fit.fit_many(part, checkpoint=checkpoints[-1], splits=splits)
    else:
        for c in cfgs:
            checkpoints.append(Path(c.run_dir) / CHECKPOINT)
            with _seed_logs([c]):
                summaries.append(run(c, keep_checkpoint=True, splits=splits_of[data_key(c)]))
    # Only now: a job interrupted in a later part (or run) resumes the finished ones from their final
    # checkpoint instead of training them again (Snakemake deletes an interrupted job's summaries).
    for path in checkpoints:
        path.unlink(missing_ok=True)
    for s in summaries:
        print(report_line(s), file=sys.stderr, flush=True)
    return summaries


def vectorized_parts(cfg: DictConfig, cfgs: list[DictConfig], shapes: dict | None = None) -> list[list[DictConfig]]:
    """The job's runs `cfgs` in vectorised runs of at most ``vectorize_max_k`` models, in order.

    A part holds runs that differ only in what the engine trains per model (fit.PER_MODEL_KEYS: seed,
    activation, run dir; the data split `data.split_seed`, each model training and evaluated on its own;
    the learning rate `optimizer.lr`, applied per model); anything else (model, dataset, batch size,
    optimiser, precision, ...) separates them. ``shapes``: data_key -> the split sizes of that data
    (Splits.sizes): runs whose splits differ in size are never put together. The n runs of a group go
    in ceil(n / max_k) parts of near-equal size (110 runs, max_k 32: 28, 28, 27, 27), the larger first.
    A pure function of the configs: a resumed job rebuilds the same parts (one checkpoint each)."""
    max_k = cfg.get("vectorize_max_k") or len(cfgs)
    groups: dict[str, list[DictConfig]] = {}
    for c in cfgs:
        key = json.dumps(fit.shared_part(c), sort_keys=True, default=str)
        if shapes is not None:
            key += json.dumps(shapes[data_key(c)])
        groups.setdefault(key, []).append(c)
    parts = []
    for g in groups.values():
        n_parts = -(-len(g) // max_k)
        size, extra = divmod(len(g), n_parts)
        start = 0
        for i in range(n_parts):
            end = start + size + (i < extra)
            parts.append(g[start:end])
            start = end
    return parts


def _job_output_dir(cfg: DictConfig) -> Path:
    """Hydra's output dir of this job (hydra.run.dir), or the one it would use by default."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(default_job_dir(cfg))


@contextlib.contextmanager
def _seed_logs(cfgs: list[DictConfig]):
    """Each run dir's train.log receives the log records while its seed trains."""
    handlers = []
    for c in cfgs:
        h = logging.FileHandler(Path(c.run_dir) / "train.log")
        h.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        logging.getLogger().addHandler(h)
        handlers.append(h)
    try:
        yield
    finally:
        for h in handlers:
            logging.getLogger().removeHandler(h)
            h.close()


def _hydra_files(cfg: DictConfig) -> None:
    """Per-seed .hydra/config.yaml and overrides.yaml, as a single run `seed=S` would write them
    (hydra.yaml describes the whole job and stays in the job's hydra.run.dir)."""
    if not HydraConfig.initialized():
        return
    task = [
        o
        for o in OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
        if o.lstrip("+~").partition("=")[0] not in ("seed", "seeds", "activation", "activations")
    ]
    hdir = Path(cfg.run_dir) / ".hydra"
    hdir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(hdir / "config.yaml", OmegaConf.to_yaml(cfg), durable=False)
    own = [f"activation={cfg.activation.name}", f"seed={cfg.seed}"]
    atomic.write_text(hdir / "overrides.yaml", yaml.safe_dump([*own, *task], default_flow_style=False), durable=False)
