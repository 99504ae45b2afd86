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
  summary.json    written last, atomically: its presence means the run finished
"""
from __future__ import annotations

import contextlib
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


class ConfigError(ValueError):
    """A config value that cannot work: reported as one line, exit code 2."""


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check_group_overrides(argv: list[str]) -> None:
    """Name an unknown `group=choice` before Hydra does (Hydra's message spans several lines)."""
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and key in GROUPS and value not in choices(key):
            raise ConfigError(f"unknown {key} {value!r}; valid: {', '.join(choices(key))}")


def validate(cfg: DictConfig) -> None:
    """Reject values that cannot work, each with a one-line reason."""
    from actlab import activations

    activations.spec(cfg.activation.name)  # raises with the list of valid names
    checks = [
        (isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool), f"seed must be an integer, got {cfg.seed!r}"),
        (_num(cfg.optimizer.lr) and cfg.optimizer.lr > 0, f"optimizer.lr must be > 0, got {cfg.optimizer.lr!r}"),
        (_num(cfg.optimizer.weight_decay) and cfg.optimizer.weight_decay >= 0,
         f"optimizer.weight_decay must be >= 0, got {cfg.optimizer.weight_decay!r}"),
        (_int(cfg.model.depth) and cfg.model.depth >= 1, f"model.depth must be an integer >= 1, got {cfg.model.depth!r}"),
        (_int(cfg.model.width) and cfg.model.width >= 1, f"model.width must be an integer >= 1, got {cfg.model.width!r}"),
        (_int(cfg.trainer.max_epochs) and cfg.trainer.max_epochs >= 1,
         f"trainer.max_epochs must be an integer >= 1, got {cfg.trainer.max_epochs!r}"),
        (_int(cfg.data.batch_size) and cfg.data.batch_size >= 1,
         f"data.batch_size must be an integer >= 1, got {cfg.data.batch_size!r}"),
        (cfg.model.init in (None, *activations.INITS),
         f"model.init must be one of {', '.join(activations.INITS)} (or null), got {cfg.model.init!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the repository the code runs from; ('unknown', False) outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def versions() -> dict:
    import pytorch_lightning as pl
    import torch

    import actlab

    return {"python": platform.python_version(), "torch": torch.__version__, "lightning": pl.__version__,
            "actlab": actlab.__version__}


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


def make_summary(cfg: DictConfig, task: str, hist: list[dict], test: dict, diverged: bool,
                 train_seconds: float, n_params: int, device: str) -> dict:
    """summary.json of one run (also used per model by the vectorised trainer, actlab.vectorized)."""
    from actlab import models

    commit, dirty = git_state()
    val_key = "val_acc" if task == "classification" else "val_loss"
    vals = [r[val_key] for r in hist if math.isfinite(r.get(val_key, math.nan))]
    best = (max if val_key == "val_acc" else min)(vals) if vals else math.nan
    return {
        "activation": cfg.activation.name, "act_params": act_params(cfg), "seed": cfg.seed,
        "dataset": cfg.data.name, "split_seed": cfg.data.split_seed, "task": task,
        "model": cfg.model.name, "depth": cfg.model.depth, "width": cfg.model.width,
        "init": cfg.model.init or models.activations.spec(cfg.activation.name).init,
        "optimizer": cfg.optimizer.name, "lr": cfg.optimizer.lr, "batch_size": cfg.data.batch_size,
        "test_acc": test.get("test_acc", math.nan), "test_loss": test.get("test_loss", math.nan),
        "best_val_acc": best if val_key == "val_acc" else math.nan,
        "best_val_loss": min((r["val_loss"] for r in hist), default=math.nan),
        "epochs": len(hist), "max_epochs": cfg.trainer.max_epochs, "diverged": diverged,
        "train_seconds": train_seconds, "seconds_per_epoch": train_seconds / max(len(hist), 1),
        "n_params": n_params,
        "device": device, "versions": versions(),
        "git_commit": commit, "git_dirty": dirty, "run_dir": str(cfg.run_dir),
    }


def run(cfg: DictConfig) -> dict:
    """Train and test one model; return the summary (also written to summary.json)."""
    import pytorch_lightning as pl
    import torch

    from actlab import atomic, data, models, probes
    from actlab.callbacks import EpochRecorder
    from actlab.module import LitModel, TensorData

    validate(cfg)
    run_dir = Path(cfg.run_dir)
    check_writable(run_dir)
    (run_dir / "summary.json").unlink(missing_ok=True)  # a rerun is unfinished until it ends
    atomic.write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    quiet = cfg.trainer.progress == "quiet" or (cfg.trainer.progress == "auto" and not sys.stdout.isatty())
    if quiet:
        for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning warnings that do not apply: per-step logging is off by design (epoch metrics only),
    # and a torch-internal deprecation raised inside Lightning itself.
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    if cfg.trainer.threads:
        torch.set_num_threads(int(cfg.trainer.threads))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    splits = data.load(cfg.data)
    model = models.build(cfg.model, splits.in_shape, splits.num_outputs, cfg.activation.name, act_params(cfg))
    lit = LitModel(model, splits.task, cfg.optimizer, cfg.trainer.max_epochs)
    dm = TensorData(splits, cfg.data.batch_size, cfg.seed)

    recorder = EpochRecorder(run_dir / "metrics.csv", quiet=quiet)
    if cfg.trainer.logger == "tensorboard":
        logger = pl.loggers.TensorBoardLogger(save_dir=str(run_dir), name="logs", version="")
    else:
        logger = pl.loggers.CSVLogger(save_dir=str(run_dir), name="logs", version="")
    trainer = pl.Trainer(
        accelerator="auto" if cfg.device == "auto" else cfg.device, devices=1,
        max_epochs=cfg.trainer.max_epochs, deterministic=cfg.trainer.deterministic,
        precision=cfg.trainer.precision, logger=logger,
        callbacks=[recorder, *probes.callbacks(cfg.probes, run_dir, cfg.activation.name)],
        enable_progress_bar=not quiet, enable_model_summary=not quiet, enable_checkpointing=False,
        num_sanity_val_steps=0, default_root_dir=str(run_dir),
    )
    t0 = time.perf_counter()
    trainer.fit(lit, datamodule=dm)
    train_seconds = time.perf_counter() - t0
    test = trainer.test(lit, datamodule=dm, verbose=not quiet)[0] if not lit.diverged else {}

    summary = make_summary(cfg, splits.task, recorder.rows, test, lit.diverged, train_seconds,
                           sum(p.numel() for p in model.parameters()), str(trainer.strategy.root_device))
    atomic.write_json(run_dir / "summary.json", summary)
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
        raise ConfigError(f"activations must be a non-empty list of names, e.g. activations=[relu,gelu], "
                          f"got {acts!r}")
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
        raise ConfigError(f"run_dir must depend on the activation (contain ${{activation.name}}) when "
                          f"activations is given, got {cfg._get_node('run_dir')._value()!r}")
    return cfgs


def seed_configs(cfg: DictConfig) -> list[DictConfig]:
    """One config per entry of ``cfg.seeds`` (validated: distinct integers, distinct run dirs)."""
    seeds = cfg.get("seeds")
    if seeds is None:
        return [cfg]
    if isinstance(seeds, (int, str)) or not all(_int(s) for s in seeds) or len(seeds) == 0:
        raise ConfigError(f"seeds must be a non-empty list of integers, e.g. seeds=[0,1,2], got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {list(seeds)}")
    cfgs = [seed_config(cfg, int(s)) for s in seeds]
    dirs = [str(c.run_dir) for c in cfgs]
    if len(set(dirs)) != len(dirs):
        raise ConfigError(f"run_dir must depend on the seed (contain ${{seed}}) when seeds is given, "
                          f"got {cfg._get_node('run_dir')._value()!r} -> {dirs[0]!r} for every seed")
    return cfgs


def _hydra_files(cfg: DictConfig) -> None:
    """Per-seed .hydra/config.yaml and overrides.yaml, as a single run `seed=S` would write them
    (hydra.yaml describes the whole job and stays in the job's hydra.run.dir)."""
    import yaml
    from hydra.core.hydra_config import HydraConfig

    from actlab import atomic

    if not HydraConfig.initialized():
        return
    task = [o for o in OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
            if o.lstrip("+~").partition("=")[0] not in ("seed", "seeds", "activation", "activations")]
    hdir = Path(cfg.run_dir) / ".hydra"
    hdir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(hdir / "config.yaml", OmegaConf.to_yaml(cfg))
    own = [f"activation={cfg.activation.name}", f"seed={cfg.seed}"]
    atomic.write_text(hdir / "overrides.yaml", yaml.safe_dump([*own, *task], default_flow_style=False))


def run_seeds(cfg: DictConfig) -> list[dict]:
    """Train every seed of ``cfg.seeds`` (or the one ``cfg.seed``) for every activation of
    ``cfg.activations`` (or the one ``cfg.activation``); one run dir and summary each."""
    if cfg.get("seeds") is None and cfg.get("activations") is None:
        return [run(cfg)]
    cfgs = job_configs(cfg)
    vectorize = use_vectorized(cfg, len(cfgs))
    for c in cfgs:  # fail before training anything
        validate(c)
        check_writable(Path(c.run_dir))
    for c in cfgs:
        _hydra_files(c)
    summaries = []
    if vectorize:
        from actlab import vectorized

        max_k = cfg.get("vectorize_max_k") or len(cfgs)
        for i in range(0, len(cfgs), max_k):
            part = cfgs[i:i + max_k]
            with _seed_logs(part):
                summaries += vectorized.fit_many(part)
    else:
        for c in cfgs:
            with _seed_logs([c]):
                summaries.append(run(c))
    return summaries


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


def check_composes(argv: list[str]) -> None:
    """Compose the config once before Hydra runs, so a misspelt key or a malformed override is
    reported in one line (Hydra's own report spans several lines)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    overrides = [a for a in argv if not a.lstrip("+~").startswith("hydra.") and "=" in a]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            compose(config_name="config", overrides=overrides)
    except HydraException as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.startswith("See https")]
        raise ConfigError(" ".join(lines)) from None


def main() -> None:
    try:
        check_group_overrides(sys.argv[1:])
        check_composes(sys.argv[1:])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
