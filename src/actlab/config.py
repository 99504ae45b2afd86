"""The training config: where conf/ is, composing it, validating its values (one line each), and the
run configs of a job (seeds x activations). Imports nothing of actlab but the errors, provenance
and schema.

Configs are Hydra's composed DictConfigs of conf/, typed by actlab.schema (dataclasses in Hydra's
ConfigStore that conf/config.yaml extends): a value of the wrong type or an unknown key fails at
compose; `validate` checks the ranges a type cannot say (actlab.schema.RANGES).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ValidationError

from actlab.errors import ConfigError, UnknownActivation
from actlab.provenance import versions
from actlab.schema import LOOSE, RANGES, SEED_MAX, describe  # importing it registers base_config

CONF_DIR = Path(os.environ.get("ACTLAB_CONF", Path(__file__).resolve().parents[2] / "conf"))
GROUPS = ("activation", "data", "model", "optimizer", "trainer", "probes")


def job_dir(run_dir: str, seeds, activations=None, lrs=None) -> str:
    """Hydra's output dir (`hydra.run.dir` in conf/config.yaml).

    One run: the run dir itself (unchanged single-run layout). Several seeds: a job dir beside the
    seed dirs, ``<parent of run_dir>/_jobs/seeds<first>-<last>`` (a name no ``seed*`` glob matches),
    so the per-seed run dirs hold only what a single run writes. With ``activations``, the name
    starts with ``<n>acts_`` (the dir is then beside the first activation's seed dirs); with ``lrs``,
    ``<n>lrs_``.
    """
    prefix = ""
    for values, tag in ((activations, "acts"), (lrs, "lrs")):
        try:
            n = len(values) if values is not None and not isinstance(values, str) else 0
        except TypeError:
            n = 0
        prefix += f"{n}{tag}_" if n else ""
    try:
        seeds = [int(s) for s in seeds]
    except (TypeError, ValueError):  # null, or a bad value that validation reports
        seeds = []
    if not seeds:
        return str(Path(run_dir).parent / "_jobs" / f"{prefix}seed") if prefix else run_dir
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        name = f"seeds{seeds[0]}-{seeds[-1]}"
    elif len(seeds) <= 8:
        name = "seeds" + "_".join(map(str, seeds))
    else:
        digest = hashlib.sha1(",".join(map(str, seeds)).encode()).hexdigest()[:8]
        name = f"seeds{seeds[0]}-{seeds[-1]}_n{len(seeds)}_{digest}"
    return str(Path(run_dir).parent / "_jobs" / (prefix + name))


OmegaConf.register_new_resolver("actlab_job_dir", job_dir, replace=True)


def default_job_dir(cfg) -> str:
    """Hydra's output dir of `cfg`'s job when hydra.run.dir is not given (conf/config.yaml)."""
    return job_dir(str(cfg.run_dir), cfg.get("seeds"), cfg.get("activations"), cfg.get("lrs"))


def _help_groups() -> str:
    """The config groups for `--help` (Hydra would also list conf/sweep/, which is Snakemake's)."""
    return "\n".join(f"{g}: {', '.join(choices(g))}" for g in GROUPS)


OmegaConf.register_new_resolver("actlab_help_groups", _help_groups, replace=True)


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
    check_complete(cfg)
    if cfg.activation.name not in choices("activation"):
        raise UnknownActivation(
            f"unknown activation {cfg.activation.name!r}; valid: {', '.join(choices('activation'))}"
        )
    if cfg.run_dir is None or not str(cfg.run_dir).strip():  # '' would write into the working dir itself
        raise ConfigError(f"run_dir is empty ({cfg.run_dir!r}): give a directory, e.g. run_dir=runs/x")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", str(cfg.experiment)):  # a path part and a table key
        raise ConfigError(
            f"experiment must be a name of letters, digits and _ (a letter first), got {cfg.experiment!r}"
        )
    check_ranges(cfg, RANGES)


def check_ranges(cfg: DictConfig, ranges: dict) -> None:
    """Each key of `ranges` (actlab.schema) within its range; its type the schema has checked."""
    for key, (ok, what) in ranges.items():
        value = OmegaConf.select(cfg, key)
        if not _holds(ok, value):
            raise ConfigError(f"{key} {what}, got {value!r}")


def _holds(ok, value) -> bool:
    """ok(value), False where the value is not of the schema's type (a config built without it)."""
    try:
        return bool(ok(value))
    except TypeError:
        return False


def check_complete(cfg: DictConfig) -> None:
    """Every key the schema requires (MISSING there, ``???``) given by the config's YAML files, and the
    keys every activation and dataset has (actlab.schema.LOOSE) given, of their types."""
    missing = set(OmegaConf.missing_keys(cfg))
    for group, schema in LOOSE.items():
        node, typed = cfg.get(group), OmegaConf.structured(schema)
        for f in dataclasses.fields(schema):
            key = f"{group}.{f.name}"
            if not isinstance(node, DictConfig) or f.name not in node or OmegaConf.is_missing(node, f.name):
                missing.add(key)
                continue
            try:
                typed[f.name] = node[f.name]  # checked against the schema's type, not stored back
            except ValidationError:
                raise ConfigError(f"{key} must be {describe(key)}, got {node[f.name]!r}") from None
    if missing:
        raise ConfigError(
            f"{', '.join(sorted(missing))} not set: each choice of the group must give it in its YAML "
            f"(required by the schema, actlab.schema)"
        )


def act_params(cfg: DictConfig) -> dict:
    return {k: v for k, v in OmegaConf.to_container(cfg.activation, resolve=True).items() if k != "name"}


# Config keys that cannot change a run's numbers: a checkpoint stays valid when only these differ.
HASH_IGNORED = (("trainer", "progress"), ("trainer", "checkpoint_every_n_epochs"))


def config_hash(cfgs: list[DictConfig]) -> str:
    """SHA-256 of the resolved configs of the runs a checkpoint covers (in order) and of the library
    versions: a checkpoint is resumed only by exactly the same training."""
    parts = []
    for c in cfgs:
        d = OmegaConf.to_container(c, resolve=True)
        for group, key in HASH_IGNORED:
            d.get(group, {}).pop(key, None)
        parts.append(d)
    blob = json.dumps({"runs": parts, "versions": versions()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def compose(overrides: list[str]) -> DictConfig:
    """The project's config composed with `overrides`; a misspelt key or a malformed override raises
    ConfigError with Hydra's message on one line (Hydra's own report spans several lines)."""
    from hydra import compose as hydra_compose  # imported here: `import actlab.config` stays light
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(error_line(e)) from None
    check_complete(cfg)
    return cfg


def error_line(e: BaseException) -> str:
    """Hydra's or OmegaConf's report of a config that does not compose, on one line. A value of the
    wrong type is named in the schema's words (actlab.schema.describe): ``seed must be an integer in
    0..4294967295 (...), got 1.5``; in a group's YAML, prefixed with the file."""
    chain: list[BaseException] = []
    x: BaseException | None = e
    while x is not None and x not in chain:
        chain.append(x)
        x = x.__cause__ or x.__context__
    bad = next((x for x in chain if isinstance(x, ValidationError) and x.full_key), None)
    if bad is not None and not str(bad.full_key).startswith("hydra"):
        line = f"{bad.full_key} must be {describe(str(bad.full_key))}, got {bad.value!r}"
        where = re.match(r"In '([^']+)'", str(e))
        return f"conf/{where.group(1)}.yaml: {line}" if where else line
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.startswith("See https")]
    return " ".join(lines) or type(e).__name__


def seed_config(cfg: DictConfig, seed: int) -> DictConfig:
    """The config of one seed of a multi-seed job: exactly what `seed=S` alone would compose."""
    one = copy.deepcopy(cfg)
    with open_dict(one):
        one.seed = seed
        one.seeds = None
    return one


def activation_configs(cfg: DictConfig) -> list[DictConfig]:
    """One config per entry of ``cfg.activations`` (each as `activation=<name>` would compose it),
    or [cfg]. Activation parameter overrides cannot apply to a list of activations: refused."""
    acts = cfg.get("activations")
    if acts is None:
        return [cfg]
    if len(acts) == 0:  # a list of strings (or null): the schema's type
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


def with_selected_lr(cfgs: list[DictConfig]) -> list[DictConfig]:
    """Each activation's config with the learning rate its ``lr_table`` chose (actlab.lrselect), or
    unchanged when there is no table."""
    path = cfgs[0].get("lr_table")
    if not path:
        return cfgs
    import pandas as pd  # imported here: only with an lr_table (pandas takes ~0.5 s to import)

    from actlab import lrselect

    try:
        table = pd.read_csv(path)
        exp = table[table["experiment"] == str(cfgs[0].experiment)] if "experiment" in table else table
        lrs = lrselect.chosen(exp)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"lr_table {path!r} cannot be read as a learning-rate selection table: {e}") from None
    for c in cfgs:
        if c.activation.name not in lrs:
            raise ConfigError(
                f"lr_table {path!r} chose no learning rate for {c.activation.name!r} (experiment {c.experiment})"
            )
        with open_dict(c):
            c.optimizer.lr = lrs[c.activation.name]
    return cfgs


# The list keys of a job of several runs in one process (each run keeps its own run dir).
LIST_KEYS = ("seeds", "activations", "lrs")


def is_multi(cfg: DictConfig) -> bool:
    """Whether `cfg` is a job of several runs (``seeds``, ``activations`` or ``lrs`` given)."""
    return any(cfg.get(k) is not None for k in LIST_KEYS)


def lr_configs(cfg: DictConfig) -> list[DictConfig]:
    """One config per entry of ``cfg.lrs`` (each as `optimizer.lr=<lr>` would compose it), or [cfg].
    The learning-rate selection trains its whole grid in one process this way (one Python start-up
    and one set of imports, ~10 s on a 2-core CPU, instead of one per rate)."""
    lrs = cfg.get("lrs")
    if lrs is None:
        return [cfg]
    if len(lrs) == 0 or not all(v > 0 for v in lrs):  # a list of numbers (or null): the schema's type
        raise ConfigError(
            f"lrs must be a non-empty list of positive learning rates, e.g. lrs=[0.001,0.01], got {lrs!r}"
        )
    if len({float(v) for v in lrs}) != len(lrs):
        raise ConfigError(f"lrs must be distinct, got {list(lrs)}")
    if cfg.get("lr_table"):
        raise ConfigError("lrs=[...] and lr_table= both set the learning rate: give one")
    out = []
    for v in lrs:
        one = copy.deepcopy(cfg)
        with open_dict(one):
            one.optimizer.lr = float(v)
            one.lrs = None
        out.append(one)
    return out


def job_configs(cfg: DictConfig) -> list[DictConfig]:
    """Every run of a job: activations (``activations``, or the one ``activation``) x learning rates
    (``lrs``, or the one ``optimizer.lr``, or the ``lr_table``'s choice) x seeds (``seeds``, or the
    one ``seed``), in that order; validated, with distinct run dirs."""
    cfgs = [c for a in with_selected_lr(activation_configs(cfg)) for r in lr_configs(a) for c in seed_configs(r)]
    if cfg.get("lrs") is not None:
        _distinct_dirs(lr_configs(cfg), cfg, "the learning rate (contain ${optimizer.lr}) when lrs")
    return _distinct_dirs(cfgs, cfg, "the activation (contain ${activation.name}) when activations")


def seed_configs(cfg: DictConfig) -> list[DictConfig]:
    """One config per entry of ``cfg.seeds`` (validated: distinct integers, distinct run dirs)."""
    seeds = cfg.get("seeds")
    if seeds is None:
        return [cfg]
    if len(seeds) == 0:  # a list of integers (or null): the schema's type
        raise ConfigError(f"seeds must be a non-empty list of integers, e.g. seeds=[0,1,2], got {seeds!r}")
    if not all(0 <= s <= SEED_MAX for s in seeds):
        raise ConfigError(f"seeds must be integers in 0..{SEED_MAX} (2**32 - 1, numpy's seed range), got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {list(seeds)}")
    return _distinct_dirs([seed_config(cfg, int(s)) for s in seeds], cfg, "the seed (contain ${seed}) when seeds")


def _distinct_dirs(cfgs: list[DictConfig], cfg: DictConfig, on: str) -> list[DictConfig]:
    """`cfgs`, if their run dirs are distinct; else ConfigError: run_dir must depend on `on` is given."""
    dirs = [str(c.run_dir) for c in cfgs]
    if len(set(dirs)) != len(dirs):
        raise ConfigError(
            f"run_dir must depend on {on} is given, got {cfg._get_node('run_dir')._value()!r} -> {dirs[0]!r} for every run"
        )
    return cfgs


# Config keys that do not make a run different: a finished run of a config equal but for these is the
# same run (rerunning the command skips it instead of training it again).
SAME_RUN_IGNORED = (*HASH_IGNORED, ("overwrite",))


def comparable(c: DictConfig | dict) -> dict:
    d = OmegaConf.to_container(c, resolve=True) if isinstance(c, DictConfig) else dict(c)
    for path in SAME_RUN_IGNORED:
        *parents, key = path
        node = d
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(key, None)
    return d


def data_key(cfg: DictConfig) -> str:
    """The resolved data config as a string: runs with equal keys train on the same splits."""
    return json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True)
