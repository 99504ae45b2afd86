"""Training runs, configured by Hydra: `python -m actlab.train activation=gelu seed=0 ...`.

Several seeds in one process: `python -m actlab.train seeds=[0,1,2,3,4] activation=gelu ...` trains
each seed and writes one complete run directory per seed (``run_dir`` resolved with that seed),
exactly as `python -m actlab.train seed=S` would; Hydra's own files (.hydra/, train.log of the whole
job) then go to ``hydra.run.dir``, which the caller should pass (default: `job_dir`).
`activations=[relu,gelu,...]` likewise trains every activation (x every seed) in one process. By default
(``vectorize=auto``) the seeds train together as one batched model (actlab.vectorized; same results
to floating-point tolerance); ``vectorize=false`` trains them one after the other (bit-identical).

Writes into the run directory (``hydra.run.dir``, = ``run_dir`` in conf/config.yaml):
  config.yaml     the fully resolved config
  metrics.csv     one row per epoch: train/val loss and accuracy, seconds
  dead_units.csv, grad_flow.csv   the probes (actlab.probes), when enabled
  SHA256SUMS      the integrity record: SHA-256 of each file above and of summary.json (actlab.integrity)
  summary.json    written last, atomically: its presence means the run finished
  last.ckpt       while training: the resume checkpoint (every ``trainer.checkpoint_every_n_epochs``
                  epochs and at the end of training; deleted once the job's summaries are written).
                  A rerun of the same command resumes from it; see docs/reliability.md. A vectorised
                  job (several runs as one model) keeps its one stacked checkpoint in the job's
                  ``hydra.run.dir`` instead (last.ckpt, or last-part<i>of<n>.ckpt per vectorised part).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

# Deterministic cuBLAS needs this set before CUDA initialises (harmless on CPU).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

CONF_DIR = Path(os.environ.get("ACTLAB_CONF", Path(__file__).resolve().parents[2] / "conf"))
log = logging.getLogger(__name__)
GROUPS = ("activation", "data", "model", "optimizer", "trainer", "probes")


def job_dir(run_dir: str, seeds, activations=None) -> str:
    """Hydra's output dir (`hydra.run.dir` in conf/config.yaml).

    One run: the run dir itself (unchanged single-run layout). Several seeds: a job dir beside the
    seed dirs, ``<parent of run_dir>/_jobs/seeds<first>-<last>`` (a name no ``seed*`` glob matches),
    so the per-seed run dirs hold only what a single run writes. With ``activations``, the name
    starts with ``<n>acts_`` (the dir is then beside the first activation's seed dirs).
    """
    try:
        acts = [str(a) for a in activations] if activations is not None and not isinstance(activations, str) else []
    except TypeError:
        acts = []
    prefix = f"{len(acts)}acts_" if acts else ""
    try:
        seeds = [int(s) for s in seeds]
    except (TypeError, ValueError):  # null, or a bad value that validation reports
        seeds = []
    if not seeds:
        return str(Path(run_dir).parent / "_jobs" / f"{prefix}seed") if acts else run_dir
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        name = f"seeds{seeds[0]}-{seeds[-1]}"
    elif len(seeds) <= 8:
        name = "seeds" + "_".join(map(str, seeds))
    else:
        import hashlib

        digest = hashlib.sha1(",".join(map(str, seeds)).encode()).hexdigest()[:8]
        name = f"seeds{seeds[0]}-{seeds[-1]}_n{len(seeds)}_{digest}"
    return str(Path(run_dir).parent / "_jobs" / (prefix + name))


OmegaConf.register_new_resolver("actlab_job_dir", job_dir, replace=True)


def _help_groups() -> str:
    """The config groups for `--help` (Hydra would also list conf/sweep/, which is Snakemake's)."""
    return "\n".join(f"{g}: {', '.join(choices(g))}" for g in GROUPS)


OmegaConf.register_new_resolver("actlab_help_groups", _help_groups, replace=True)


class ConfigError(ValueError):
    """A config value that cannot work: reported as one line, exit code 2."""


SEED_MAX = 2**32 - 1  # seed_everything seeds numpy, whose seeds are uint32


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check_group_overrides(argv: list[str]) -> None:
    """Name an unknown `group=choice` before Hydra does (Hydra's message spans several lines)."""
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and key == "sweep":
            raise ConfigError(
                f"sweep configs are Snakemake's, not a training run's: snakemake --cores all "
                f"--configfile conf/sweep/{value}.yaml"
            )
        if sep and key in GROUPS and value not in choices(key):
            raise ConfigError(f"unknown {key} {value!r}; valid: {', '.join(choices(key))}")


def validate(cfg: DictConfig) -> None:
    """Reject values that cannot work, each with a one-line reason."""
    from actlab import activations

    activations.spec(cfg.activation.name)  # raises with the list of valid names
    if cfg.run_dir is None or not str(cfg.run_dir).strip():  # '' would write into the working dir itself
        raise ConfigError(f"run_dir is empty ({cfg.run_dir!r}): give a directory, e.g. run_dir=runs/x")
    checks = [
        (
            _int(cfg.seed) and 0 <= cfg.seed <= SEED_MAX,
            f"seed must be an integer in 0..{SEED_MAX} (2**32 - 1, numpy's seed range), got {cfg.seed!r}",
        ),
        (_num(cfg.optimizer.lr) and cfg.optimizer.lr > 0, f"optimizer.lr must be > 0, got {cfg.optimizer.lr!r}"),
        (
            _num(cfg.optimizer.weight_decay) and cfg.optimizer.weight_decay >= 0,
            f"optimizer.weight_decay must be >= 0, got {cfg.optimizer.weight_decay!r}",
        ),
        (
            _int(cfg.model.depth) and cfg.model.depth >= 1,
            f"model.depth must be an integer >= 1, got {cfg.model.depth!r}",
        ),
        (
            _int(cfg.model.width) and cfg.model.width >= 1,
            f"model.width must be an integer >= 1, got {cfg.model.width!r}",
        ),
        (
            _int(cfg.trainer.max_epochs) and cfg.trainer.max_epochs >= 1,
            f"trainer.max_epochs must be an integer >= 1, got {cfg.trainer.max_epochs!r}",
        ),
        (
            _int(cfg.data.batch_size) and cfg.data.batch_size >= 1,
            f"data.batch_size must be an integer >= 1, got {cfg.data.batch_size!r}",
        ),
        (
            _int(cfg.trainer.get("checkpoint_every_n_epochs", 0))
            and cfg.trainer.get("checkpoint_every_n_epochs", 0) >= 0,
            f"trainer.checkpoint_every_n_epochs must be an integer >= 0 (0 = no checkpoints), "
            f"got {cfg.trainer.get('checkpoint_every_n_epochs')!r}",
        ),
        (
            cfg.model.init in (None, *activations.INITS),
            f"model.init must be one of {', '.join(activations.INITS)} (or null), got {cfg.model.init!r}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@functools.cache  # one process runs one version of the code: ask git once, not twice per run
def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the repository the code runs from; ('unknown', False) outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            != ""
        )
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def versions() -> dict:
    import pytorch_lightning as pl
    import torch

    import actlab

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "actlab": actlab.__version__,
    }


def act_params(cfg: DictConfig) -> dict:
    return {k: v for k, v in OmegaConf.to_container(cfg.activation, resolve=True).items() if k != "name"}


def check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"run dir {str(run_dir)!r} is not writable: {e.strerror}") from None


# Config keys that cannot change a run's numbers: a checkpoint stays valid when only these differ.
HASH_IGNORED = (("trainer", "progress"), ("trainer", "checkpoint_every_n_epochs"))
CHECKPOINT = "last.ckpt"


def config_hash(cfgs: list[DictConfig]) -> str:
    """SHA-256 of the resolved configs of the runs a checkpoint covers (in order) and of the library
    versions: a checkpoint is resumed only by exactly the same training."""
    import hashlib
    import json

    parts = []
    for c in cfgs:
        d = OmegaConf.to_container(c, resolve=True)
        for group, key in HASH_IGNORED:
            d.get(group, {}).pop(key, None)
        parts.append(d)
    blob = json.dumps({"runs": parts, "versions": versions()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def setup_runtime(tr: DictConfig) -> bool:
    """Process-wide settings of a training job from the trainer config: quiet Lightning logs when not
    on a terminal, drop warnings that do not apply, torch threads, CUDA numerics. Returns `quiet`."""
    import torch

    quiet = tr.progress == "quiet" or (tr.progress == "auto" and not sys.stdout.isatty())
    if quiet:
        for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # Per-step logging is off by design (epoch metrics only); a torch-internal deprecation raised inside
    # Lightning; no DataLoader workers by design (tensors on the device); a rerun or resumed run finds
    # Lightning's own logs/ from before (they are rewritten).
    for message in (
        ".*smaller than the logging interval.*",
        ".*isinstance\\(treespec, LeafSpec\\).*",
        ".*does not have many workers.*",
        ".*exists and is not empty. Previous log files.*",
    ):
        warnings.filterwarnings("ignore", message=message)
    if "SLURM_JOB_ID" not in os.environ:  # Lightning's hint to use srun, when srun is merely installed
        warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system.*")
    if tr.threads:
        torch.set_num_threads(int(tr.threads))
    if tr.deterministic:
        # Deterministic mode also fills every new tensor with NaN (a guard for kernels that read memory
        # they never wrote). Our kernels write every element they return, so this is a memset of each
        # fresh buffer: ~5 % of a vectorised step (the gathered batch). Bit-identical reruns are tested.
        torch.utils.deterministic.fill_uninitialized_memory = False
    gpu_numerics(tr)
    return quiet


def gpu_numerics(tr: DictConfig) -> None:
    """CUDA numerics from the trainer config (no-op on CPU): TF32 only when asked for (torch's default
    for cuDNN convolutions is TF32 on: switched off here so fp32 means fp32), cuDNN autotuning off when
    deterministic (it picks algorithms by timing). Lightning's deterministic=True does the rest
    (torch.use_deterministic_algorithms; CUBLAS_WORKSPACE_CONFIG is set at import)."""
    import torch

    if not torch.cuda.is_available():
        return
    tf32 = bool(tr.get("tf32"))
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if tr.deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def resume_checkpoint(cfgs: list[DictConfig], path: Path, label: str):
    """(ResumeCheckpoint callback or None, ckpt_path to resume from or None) for the runs ``cfgs``
    trained together, checkpointed at ``path``."""
    from actlab.callbacks import ResumeCheckpoint, resume_point

    every = cfgs[0].trainer.get("checkpoint_every_n_epochs", 0)
    if not every:
        return None, None
    digest = config_hash(cfgs)
    ckpt, epoch = resume_point(path, digest)
    if ckpt is not None:
        log.info("resume: %s: resuming from %s (after epoch %d)", label, ckpt, epoch)
    else:
        log.info("resume: %s: training from scratch", label)
    return ResumeCheckpoint(path, every, digest, label=label), ckpt


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
    """summary.json of one run (also used per model by the vectorised trainer, actlab.vectorized).
    ``data_provenance``: the loader's ``Splits.provenance`` (generating args, SHA-256, split sizes)."""
    from actlab import models

    commit, dirty = git_state()
    val_key = "val_acc" if task == "classification" else "val_loss"
    vals = [r[val_key] for r in hist if math.isfinite(r.get(val_key, math.nan))]
    best = (max if val_key == "val_acc" else min)(vals) if vals else math.nan
    return {
        "activation": cfg.activation.name,
        "act_params": act_params(cfg),
        "seed": cfg.seed,
        "dataset": cfg.data.name,
        "split_seed": cfg.data.split_seed,
        "task": task,
        "model": cfg.model.name,
        "depth": cfg.model.depth,
        "width": cfg.model.width,
        "init": cfg.model.init or models.activations.spec(cfg.activation.name).init,
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


def run(cfg: DictConfig, keep_checkpoint: bool = False, splits=None) -> dict:
    """Train and test one model; return the summary (also written to summary.json). One run is K=1
    of the batched engine (actlab.vectorized.fit_many): the same module, recorder, checkpoint and
    summary as a job of several runs.

    Resumes from ``<run_dir>/last.ckpt`` when it holds a checkpoint of this config; deletes it once
    summary.json is written, unless ``keep_checkpoint`` (run_seeds deletes it when the whole job ends).
    ``splits``: the data of ``cfg.data``, already loaded (else loaded here)."""
    from actlab import data, vectorized

    validate(cfg)
    run_dir = Path(cfg.run_dir)
    check_writable(run_dir)
    if splits is None:
        splits = data.load(cfg.data)  # verified before anything is written: bad data leaves no run behind
    (summary,) = vectorized.fit_many([cfg], checkpoint=run_dir / CHECKPOINT, splits=splits, job=False)
    if not keep_checkpoint:
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
    return summary


def seed_config(cfg: DictConfig, seed: int) -> DictConfig:
    """The config of one seed of a multi-seed job: exactly what `seed=S` alone would compose."""
    import copy

    from omegaconf import open_dict

    one = copy.deepcopy(cfg)
    with open_dict(one):
        one.seed = seed
        one.seeds = None
    return one


def activation_configs(cfg: DictConfig) -> list[DictConfig]:
    """One config per entry of ``cfg.activations`` (each as `activation=<name>` would compose it),
    or [cfg]. Activation parameter overrides cannot apply to a list of activations: refused."""
    import copy

    from omegaconf import open_dict

    acts = cfg.get("activations")
    if acts is None:
        return [cfg]
    if isinstance(acts, str) or len(acts) == 0 or not all(isinstance(a, str) for a in acts):
        raise ConfigError(f"activations must be a non-empty list of names, e.g. activations=[relu,gelu], got {acts!r}")
    if len(set(acts)) != len(acts):
        raise ConfigError(f"activations must be distinct, got {list(acts)}")
    for a in acts:
        if a not in choices("activation"):
            raise ConfigError(f"unknown activation {a!r}; valid: {', '.join(choices('activation'))}")
    own = OmegaConf.load(CONF_DIR / "activation" / f"{cfg.activation.name}.yaml")
    if OmegaConf.to_container(cfg.activation, resolve=True) != OmegaConf.to_container(own, resolve=True):
        raise ConfigError("activation parameters cannot be overridden together with activations=[...]")
    out = []
    for a in acts:
        one = copy.deepcopy(cfg)
        with open_dict(one):
            one.activation = OmegaConf.load(CONF_DIR / "activation" / f"{a}.yaml")
            one.activations = None
        out.append(one)
    return out


def job_configs(cfg: DictConfig) -> list[DictConfig]:
    """Every run of a job: activations (``activations``, or the one ``activation``) x seeds
    (``seeds``, or the one ``seed``), activation-major; validated, with distinct run dirs."""
    cfgs = [c for a in activation_configs(cfg) for c in seed_configs(a)]
    dirs = [str(c.run_dir) for c in cfgs]
    if len(set(dirs)) != len(dirs):
        raise ConfigError(
            f"run_dir must depend on the activation (contain ${{activation.name}}) when "
            f"activations is given, got {cfg._get_node('run_dir')._value()!r}"
        )
    return cfgs


def seed_configs(cfg: DictConfig) -> list[DictConfig]:
    """One config per entry of ``cfg.seeds`` (validated: distinct integers, distinct run dirs)."""
    seeds = cfg.get("seeds")
    if seeds is None:
        return [cfg]
    if isinstance(seeds, (int, str)) or not all(_int(s) for s in seeds) or len(seeds) == 0:
        raise ConfigError(f"seeds must be a non-empty list of integers, e.g. seeds=[0,1,2], got {seeds!r}")
    if not all(0 <= s <= SEED_MAX for s in seeds):
        raise ConfigError(f"seeds must be integers in 0..{SEED_MAX} (2**32 - 1, numpy's seed range), got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {list(seeds)}")
    cfgs = [seed_config(cfg, int(s)) for s in seeds]
    dirs = [str(c.run_dir) for c in cfgs]
    if len(set(dirs)) != len(dirs):
        raise ConfigError(
            f"run_dir must depend on the seed (contain ${{seed}}) when seeds is given, "
            f"got {cfg._get_node('run_dir')._value()!r} -> {dirs[0]!r} for every seed"
        )
    return cfgs


def _hydra_files(cfg: DictConfig) -> None:
    """Per-seed .hydra/config.yaml and overrides.yaml, as a single run `seed=S` would write them
    (hydra.yaml describes the whole job and stays in the job's hydra.run.dir)."""
    import yaml
    from hydra.core.hydra_config import HydraConfig

    from actlab import atomic

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


# Config keys that do not make a run different: a finished run of a config equal but for these is the
# same run (rerunning the command skips it instead of training it again).
SAME_RUN_IGNORED = (*HASH_IGNORED, ("overwrite",))


def _comparable(c: DictConfig | dict) -> dict:
    d = OmegaConf.to_container(c, resolve=True) if isinstance(c, DictConfig) else dict(c)
    for path in SAME_RUN_IGNORED:
        *parents, key = path
        node = d
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(key, None)
    return d


def finished_summary(c: DictConfig) -> dict | None:
    """The summary of the finished run of config `c` in its run dir, or None: summary.json is there,
    its integrity record verifies (actlab.integrity) and its config.yaml is `c` (but for
    SAME_RUN_IGNORED). A finished run of ANOTHER config there is refused unless `overwrite=true`: a
    rerun must not silently replace a result."""
    import json

    import yaml

    from actlab import integrity

    run_dir = Path(c.run_dir)
    if not (run_dir / "summary.json").is_file():
        return None
    try:
        integrity.verify(run_dir)
        stored = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (integrity.IntegrityError, OSError, yaml.YAMLError):
        return None  # damaged or incomplete: trained again
    if _comparable(stored) == _comparable(c):
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


def run_seeds(cfg: DictConfig) -> list[dict]:
    """Train every seed of ``cfg.seeds`` (or the one ``cfg.seed``) for every activation of
    ``cfg.activations`` (or the one ``cfg.activation``); one run dir and summary each. A job whose
    runs have all finished with this config is not trained again (finished_summary); a job with some
    unfinished runs trains as a whole, as first planned (the same vectorised parts, so a resumed part
    is bit-identical; finished parts resume from their final checkpoint). One line per run on stderr."""
    multi = cfg.get("seeds") is not None or cfg.get("activations") is not None
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
    from actlab import data

    vectorize = use_vectorized(cfg, len(cfgs))
    for c in cfgs:  # fail before training anything
        validate(c)
    # Loaded (downloaded, verified) once per distinct data config, before any run dir is made: bad data
    # leaves nothing behind. Runs differ in data only when the split follows the seed (data.split_seed: ${seed}).
    splits_of = {}
    for c in cfgs:
        if _data_key(c) not in splits_of:
            splits_of[_data_key(c)] = data.load(c.data)
    for c in cfgs:
        check_writable(Path(c.run_dir))
    for c in cfgs:
        _hydra_files(c)
    summaries, checkpoints = [], []
    if vectorize:
        from actlab import vectorized

        parts = vectorized_parts(cfg, cfgs)
        for i, part in enumerate(parts):
            # The stacked checkpoint of a vectorised run covers several run dirs: it lives in the
            # job's own dir (hydra.run.dir), one file per vectorised part.
            name = CHECKPOINT if len(parts) == 1 else f"last-part{i + 1}of{len(parts)}.ckpt"
            checkpoints.append(_job_output_dir(cfg) / name)
            with _seed_logs(part):
                summaries += vectorized.fit_many(part, checkpoint=checkpoints[-1], splits=splits_of[_data_key(part[0])])
    else:
        for c in cfgs:
            checkpoints.append(Path(c.run_dir) / CHECKPOINT)
            with _seed_logs([c]):
                summaries.append(run(c, keep_checkpoint=True, splits=splits_of[_data_key(c)]))
    # Only now: a job interrupted in a later part (or run) resumes the finished ones from their final
    # checkpoint instead of training them again (Snakemake deletes an interrupted job's summaries).
    for path in checkpoints:
        path.unlink(missing_ok=True)
    for s in summaries:
        print(report_line(s), file=sys.stderr, flush=True)
    return summaries


def _data_key(cfg: DictConfig) -> str:
    """The resolved data config as a string: runs with equal keys train on the same splits."""
    import json

    return json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True)


def vectorized_parts(cfg: DictConfig, cfgs: list[DictConfig]) -> list[list[DictConfig]]:
    """The job's runs `cfgs` in vectorised runs of at most ``vectorize_max_k`` models, in order; a part
    holds runs of one data config only (they share one copy of the data)."""
    max_k = cfg.get("vectorize_max_k") or len(cfgs)
    groups: dict[str, list[DictConfig]] = {}
    for c in cfgs:
        groups.setdefault(_data_key(c), []).append(c)
    return [g[i : i + max_k] for g in groups.values() for i in range(0, len(g), max_k)]


def _job_output_dir(cfg: DictConfig) -> Path:
    """Hydra's output dir of this job (hydra.run.dir), or the one it would use by default."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(job_dir(str(cfg.run_dir), cfg.get("seeds"), cfg.get("activations")))


def use_vectorized(cfg: DictConfig, k: int) -> bool:
    """`vectorize`: true = one vectorised run (error if the model cannot be), false = the seeds one
    after the other, auto = vectorised when supported and k >= 2."""
    from actlab import vectorized

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
    ok, why = vectorized.supported(cfg)
    if mode is True and not ok:
        raise ConfigError(f"vectorize=true but cannot vectorise: {why}")
    return ok and (mode is True or k >= 2)


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


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    from actlab.activations import UnknownActivation
    from actlab.data import DataError

    try:
        run_seeds(cfg)
    except (ConfigError, DataError, UnknownActivation) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a full disk: one line, not Hydra's traceback (the other OSErrors are bugs)
        if not _disk_full(e):
            raise
        print(_disk_full_line(e), file=sys.stderr)
        sys.exit(2)


def check_composes(argv: list[str]) -> DictConfig:
    """Compose the config once before Hydra runs, so a misspelt key or a malformed override is
    reported in one line (Hydra's own report spans several lines). Returns the composed config."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    overrides = [a for a in argv if not a.lstrip("+~").startswith("hydra.") and "=" in a]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
    except HydraException as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.startswith("See https")]
        raise ConfigError(" ".join(lines)) from None


def check_creatable(path: Path, what: str = "run dir") -> None:
    """`path` exists as a directory or can be created (its nearest existing ancestor is a writable
    directory); checked without creating anything."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is not writable: {str(p)!r} is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {str(path)!r} is not writable: permission denied on {str(p)!r}")


def check_values(cfg: DictConfig) -> list[DictConfig]:
    """Every value check of a job (the values of every run, the seeds/activations lists, the
    vectorisation and probe settings), touching no file; returns the job's run configs. Also run by
    the pipeline on each experiment's composed config before any job (workflow/rules/common.smk)."""
    from actlab import probes

    multi = cfg.get("seeds") is not None or cfg.get("activations") is not None
    cfgs = job_configs(cfg) if multi else [cfg]
    if multi:
        use_vectorized(cfg, len(cfgs))
    for c in cfgs:
        validate(c)
        probes.callbacks(c.probes, Path(c.run_dir), c.activation.name)  # validates; writes nothing
    return cfgs


def check_job(cfg: DictConfig, argv: list[str]) -> None:
    """Every check of a job that needs no file written, before Hydra creates its output dir, so that
    bad input leaves nothing behind: its values (check_values) and that the run dirs and Hydra's dir
    can be made."""
    for c in check_values(cfg):
        check_creatable(Path(c.run_dir))
        finished_summary(c)  # a finished run of another config there: refused unless overwrite=true
    given = [a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")]
    hydra_dir = given[-1] if given else job_dir(str(cfg.run_dir), cfg.get("seeds"), cfg.get("activations"))
    check_creatable(Path(hydra_dir), "output dir (hydra.run.dir)")


_LOCKS: list = []  # the open lock files of this job's dirs (flock is held while a file stays open)
LOCK_FILE = ".actlab.lock"


def lock_dirs(dirs: list[Path]) -> None:
    """Lock each dir (run dirs, the job's Hydra dir) for this process's lifetime, or refuse the job:
    two trainings in one dir would interleave their CSV rows and delete or resume each other's
    checkpoint. fcntl.flock on <dir>/.actlab.lock, which holds the holder's pid; the kernel releases
    it when the process ends, however it ends (nothing stale to clean up). A no-op without fcntl."""
    try:
        import fcntl
    except ImportError:
        return
    for d in sorted({Path(d).absolute() for d in dirs}):
        d.mkdir(parents=True, exist_ok=True)
        f = open(d / LOCK_FILE, "a+")  # never truncates: the holder's pid stays readable
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            f.close()
            raise ConfigError(f"run dir {str(d)!r} in use by pid {pid} (another actlab.train)") from None
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        _LOCKS.append(f)


def job_dirs(cfg: DictConfig, argv: list[str]) -> list[Path]:
    """Every dir the job writes: its run dirs and, for several runs, Hydra's job dir."""
    dirs = [
        Path(c.run_dir)
        for c in (job_configs(cfg) if cfg.get("seeds") is not None or cfg.get("activations") is not None else [cfg])
    ]
    given = [a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")]
    return [*dirs, Path(given[-1] if given else job_dir(str(cfg.run_dir), cfg.get("seeds"), cfg.get("activations")))]


def _disk_full(e: OSError) -> bool:
    import errno

    return e.errno in (errno.ENOSPC, errno.EDQUOT)


def _disk_full_line(e: OSError) -> str:
    where = e.filename2 or e.filename
    return (
        f"error: {e.strerror}"
        + (f" writing {str(where)!r}" if where else "")
        + " (free space and rerun: the run resumes from its last checkpoint)"
    )


def main() -> None:
    from actlab.activations import UnknownActivation

    argv = sys.argv[1:]
    try:
        check_group_overrides(argv)
        cfg = check_composes(argv)
        if not any(a.startswith("-") for a in argv):  # not for Hydra's own flags (--help, --cfg, -m)
            check_job(cfg, argv)
            lock_dirs(job_dirs(cfg, argv))
    except (ConfigError, UnknownActivation) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a full disk while making the dirs
        if not _disk_full(e):
            raise
        print(_disk_full_line(e), file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
