"""Fit K >= 1 runs of one architecture as one engine run (actlab.engine) and write each run's dir.

It is the same experiment as K separate runs (a single run is K=1 of this very code):
- initialisation: model k = `models.build(...)` right after `seed_everything(seed_k)`;
- data order: model k draws its batches from its own generator seeded with seed_k
  (actlab.batches.StackedBatches); a batch is a gather with a (K, B) index;
- metrics: epoch means weighted by batch size; divergence and probes per model (actlab.recorder).
K runs together agree with the K runs alone to floating-point tolerance (batched matmuls and grouped
convolutions round differently), not bit-exact: in float64 (`trainer.precision=64-true`) to ~1e-10
relative, in float32 to the tolerance derived in tests/test_vectorized.py (docs/reliability.md).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from torch import nn

from actlab import atomic, data, integrity, models
from actlab.batches import VecData
from actlab.checkpoint import resume_checkpoint
from actlab.checks import vectorizable
from actlab.config import act_params, data_key, validate
from actlab.data import Splits
from actlab.engine import VecLitModel
from actlab.errors import ConfigError
from actlab.losses import chance_loss
from actlab.recorder import VecRecorder
from actlab.rundir import check_writable
from actlab.runtime import setup_runtime
from actlab.stacked_mlp import StackedMLP
from actlab.stacked_vmap import StackedNet
from actlab.summary import make_summary

log = logging.getLogger(__name__)

# Keys that may differ between the models of one vectorised run; everything else must be equal.
PER_MODEL_KEYS = ("seed", "seeds", "run_dir", "activation")
# ... and nested ones: each model trains on its own split (VecData) with its own learning rate
# (VecLitModel: optim.PerModelLR).
PER_MODEL_NESTED = (("data", "split_seed"), ("optimizer", "lr"))


def shared_part(cfg: DictConfig) -> dict:
    """The resolved config less what may differ between the models of one vectorised run."""
    c = OmegaConf.to_container(cfg, resolve=True)
    for k in PER_MODEL_KEYS:
        c.pop(k, None)
    for outer, inner in PER_MODEL_NESTED:
        if isinstance(c.get(outer), dict):
            c[outer].pop(inner, None)
    c.get("model", {}).pop("init", None)  # init only changes the initial values, not the shapes
    return c


def check_compatible(cfgs: list[DictConfig]) -> None:
    ref = shared_part(cfgs[0])
    for c in cfgs[1:]:
        if shared_part(c) != ref:
            raise ConfigError(
                "vectorised runs must differ only in seed, run_dir, activation, data.split_seed and optimizer.lr"
            )
    dirs = [str(c.run_dir) for c in cfgs]
    if len(set(dirs)) != len(dirs):
        raise ConfigError("vectorised runs need distinct run dirs")


def consecutive_groups(keys: list) -> list[tuple[int, int]]:
    """[(start, end)] of the runs of equal consecutive keys: the activation groups of a StackedMLP."""
    first = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    return list(zip(first, first[1:] + [len(keys)]))


def _act_key(cfg: DictConfig) -> tuple:
    return cfg.activation.name, tuple(sorted((k, repr(v)) for k, v in act_params(cfg).items()))


def stack(model: str, nets: list[nn.Module], groups: list[tuple[int, int]]) -> nn.Module:
    """The batched model of `nets` (models.build's `model`, e.g. "mlp"): the MLP's own stack (batched
    matmuls and a hand-written backward), any other model as StackedNet (the CNN: grouped convolutions)."""
    return StackedMLP(nets, groups) if model == "mlp" else StackedNet(nets, groups)


def fit_many(
    cfgs: list[DictConfig],
    checkpoint: Path | None = None,
    splits: Splits | list[Splits] | None = None,
    job: bool = True,
) -> list[dict]:
    """Train the models of `cfgs` (same config but for seed, run_dir and activation) in one
    vectorised Lightning run; write each model's run dir; return the summaries in cfgs' order.
    Models may differ in data split and learning rate too (PER_MODEL_NESTED): each trains and is
    evaluated on its own split, steps with its own learning rate.

    ``checkpoint``: where the stacked resume checkpoint of all the models goes (actlab.train puts it
    in the job's hydra.run.dir); resumed from when it holds a checkpoint of exactly these configs.
    Left in place (the caller deletes it when the whole job is done). None: no checkpoints.
    ``splits``: the data of the configs' ``data``, already loaded (else loaded here): one Splits for
    all, or one per config (the same object for runs of one split; splits of equal sizes). ``job``: the runs
    are (part of) a job of several runs, recorded in each summary's ``vectorized``; False for a run
    alone (`actlab.train.run`), whose summary is the single run's."""
    for c in cfgs:
        validate(c)
        ok, why = vectorizable(c)
        if not ok:
            raise ConfigError(f"cannot vectorise: {why}")
    check_compatible(cfgs)
    # Models sharing an activation are made adjacent, so each activation runs on one slice.
    order = sorted(range(len(cfgs)), key=lambda i: (_act_key(cfgs[i]), i))
    groups = consecutive_groups([_act_key(cfgs[i]) for i in order])
    cfgs_s = [cfgs[i] for i in order]
    cfg0 = cfgs_s[0]

    if splits is None:  # loaded (verified) before anything is written: bad data leaves no run behind
        loaded: dict[str, Splits] = {}
        splits = [loaded[k] if (k := data_key(c)) in loaded else loaded.setdefault(k, data.load(c.data)) for c in cfgs]
    elif isinstance(splits, Splits):
        splits = [splits] * len(cfgs)
    if len(splits) != len(cfgs):
        raise ValueError(f"{len(splits)} splits for {len(cfgs)} runs")
    # The distinct splits of the part (S of them, by identity) and each model's: split_of[k] in range(S).
    distinct: list[Splits] = []
    split_of = []
    for i in order:
        j = next((j for j, d in enumerate(distinct) if d is splits[i]), None)
        if j is None:
            distinct.append(splits[i])
            j = len(distinct) - 1
        split_of.append(j)
    first = distinct[0]
    for d in distinct[1:]:  # stacked as (S, N, ...): one size per split, as one data config's splits have
        if (d.sizes(), d.task, d.num_outputs) != (first.sizes(), first.task, first.num_outputs):
            raise ConfigError(
                f"cannot vectorise runs whose splits differ in size: {first.sizes()} vs {d.sizes()} "
                "(train them in separate parts: actlab.runner.vectorized_parts)"
            )
    splits = first  # what the models' shapes and the task are read from
    try:  # a model that cannot take this data's input shape: one line, before any file
        models.build(cfg0.model, splits.in_shape, splits.num_outputs, cfg0.activation.name, act_params(cfg0))
    except ValueError as e:
        raise ConfigError(f"model={cfg0.model.name} cannot train on data={cfg0.data.name}: {e}") from None
    for c in cfgs_s:
        run_dir = Path(c.run_dir)
        check_writable(run_dir)
        (run_dir / "summary.json").unlink(missing_ok=True)
        atomic.write_text(run_dir / "config.yaml", OmegaConf.to_yaml(c, resolve=True), durable=False)

    tr = cfg0.trainer
    quiet = setup_runtime(tr)

    nets = []
    for c in cfgs_s:  # each model's initialisation, exactly as its single run draws it
        pl.seed_everything(c.seed, workers=True, verbose=False)
        nets.append(models.build(c.model, splits.in_shape, splits.num_outputs, c.activation.name, act_params(c)))
    views = nets  # the per-model modules double as the probes' views (refreshed before each use)
    net = stack(cfg0.model.name, nets, groups)
    # the divergence rule's chance loss of each model's own training split
    chance = [chance_loss(d.task, d.y_train, d.num_outputs) for d in distinct]
    recorder = VecRecorder(cfgs_s, views, quiet, [chance[j] for j in split_of])
    recorder.layer_names = net.layer_names
    chunk = int(tr.get("steps_per_call") or 1)
    lrs = [float(c.optimizer.lr) for c in cfgs_s]
    lit = VecLitModel(
        net,
        splits.task,
        cfg0.optimizer,
        tr.max_epochs,
        recorder.grad_flow_every(),
        compile=bool(tr.get("compile")),
        lrs=lrs if len(set(lrs)) > 1 else None,
    )
    dm = VecData(distinct, cfg0.data.batch_size, [int(c.seed) for c in cfgs_s], chunk, split_of=split_of)
    ckpt_cb, ckpt_path = (
        (None, None)
        if checkpoint is None
        else resume_checkpoint(
            cfgs_s, Path(checkpoint), f"{len(cfgs_s)} vectorised models" if job else str(cfg0.run_dir)
        )
    )
    logger = False
    if len(cfgs_s) == 1:  # one run: Lightning's own log of its epoch metrics in <run_dir>/logs/ (VecRecorder)
        kind = pl.loggers.TensorBoardLogger if tr.get("logger") == "tensorboard" else pl.loggers.CSVLogger
        logger = kind(save_dir=str(cfg0.run_dir), name="logs", version="")
    trainer = pl.Trainer(
        accelerator="auto" if cfg0.device == "auto" else cfg0.device,
        devices=1,
        max_epochs=tr.max_epochs,
        deterministic=tr.deterministic,
        precision=tr.precision,
        logger=logger,
        callbacks=[recorder, *([ckpt_cb] if ckpt_cb else [])],
        enable_progress_bar=not quiet,
        enable_model_summary=not quiet,
        enable_checkpointing=ckpt_cb is not None,
        num_sanity_val_steps=0,
        default_root_dir=str(Path(cfg0.run_dir) if len(cfgs_s) == 1 else Path(cfg0.run_dir).parent),
    )
    for v in views:
        v.to(trainer.strategy.root_device)
    log.info(
        "vectorised run: %d models (%s) on %s",
        len(cfgs_s),
        ", ".join(f"{c.activation.name}/seed{c.seed}" for c in cfgs_s),
        trainer.strategy.root_device,
    )
    t0 = time.perf_counter()
    trainer.fit(lit, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    train_seconds = ckpt_cb.train_seconds() if ckpt_cb else time.perf_counter() - t0
    test = None
    if not all(recorder.diverged):
        trainer.test(lit, datamodule=dm, verbose=False)
        test = lit.epoch_means["test"].double().cpu().tolist()

    device = str(trainer.strategy.root_device)
    summaries = []
    for k, c in enumerate(cfgs_s):
        t = {} if recorder.diverged[k] or test is None else {"test_loss": test[0][k], "test_acc": test[1][k]}
        if splits.task == "regression":
            t.pop("test_acc", None)
        s = make_summary(
            c,
            splits.task,
            recorder.rows[k],
            t,
            recorder.diverged[k],
            train_seconds / len(cfgs),
            sum(p.numel() for p in nets[k].parameters()),
            device,
            resumed_from_epoch=ckpt_cb.resumed_from if ckpt_cb else 0,
            data_provenance=distinct[split_of[k]].provenance,  # its own split's
        )
        if job:  # how the job ran; a run alone (K=1) has the single run's summary
            s["vectorized"] = {"k": len(cfgs), "job_train_seconds": train_seconds}
        integrity.write_summary(c.run_dir, s)  # SHA256SUMS of the run's files, then summary.json, last
        summaries.append(s)
    back = [None] * len(cfgs)
    for pos, i in enumerate(order):
        back[i] = summaries[pos]
    return back
