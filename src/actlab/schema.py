"""The training config's types: dataclasses registered in Hydra's ConfigStore as ``base_config``, which
conf/config.yaml extends (its defaults list starts with ``- base_config``). Every group composes into
a typed field of it, so a value of the wrong type or a key the schema lacks fails at compose, before
any check of ours runs; `RANGES` holds what a type cannot say (lr > 0, depth >= 1, ...) as a table
that actlab.config.validate reads.

Defaults are today's YAML values where every choice of a group agrees (the trainer, the probes, the
top-level keys); MISSING (``???``) where each choice must set its own (a model's depth, an optimizer's
lr): a group YAML that leaves one out fails at compose (actlab.config.compose). The YAML files still
hold the values a run uses; the types and required keys live here.

Loosely typed on purpose: the activation and data groups. An activation's parameters differ per
function (alpha, approximate, negative_slope, init + mode, beta + threshold) and a dataset's keys per
loader (files, url + archive, args, fractions or val_size); an Optional field per key would add
``null`` keys to every activation's and dataset's resolved config, which changes act_params (the
keyword arguments of the activation) and every run's config hash, and a dataclass per activation
would make adding one three edits instead of a registry entry + a YAML file. (OmegaConf's open
dataclass, a subclass of Dict, is deprecated, and it would also accept a misspelt override.) So
`Config` types them ``Any``, and `LOOSE` holds the keys every activation and dataset must have, with
their types (ActivationConf, DataConf): actlab.config.check_complete checks them after compose; the
other keys are the function's or the loader's own (the registry checks an activation's parameters
when it builds it; actlab.data, a dataset's keys). Struct mode still refuses a misspelt key.

Imports only the standard library, omegaconf and Hydra's ConfigStore (no torch: actlab.checks and
every snakemake command import it).
"""

# ruff: noqa: UP006, UP007, UP035, UP045 (typing.Optional/List/Union: the forms OmegaConf 2.3 reads in dataclasses)
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, List, Optional, Union, get_args, get_origin, get_type_hints

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

SEED_MAX = 2**32 - 1  # seed_everything seeds numpy, whose seeds are uint32
INITS = ("kaiming", "lecun", "xavier", "torch_default")  # model.init (actlab.activations.init_weights)


@dataclass
class ActivationConf:
    """The keys every conf/activation/<name>.yaml has (checked, not merged: its parameters are free)."""

    name: str = MISSING


@dataclass
class DataConf:
    """The keys every conf/data/<name>.yaml has (checked, not merged: its loader's keys are free)."""

    name: str = MISSING
    loader: str = MISSING
    split_seed: int = MISSING
    batch_size: int = MISSING


# the loosely typed groups: the keys each choice must have, typed (actlab.config.check_complete)
LOOSE = {"activation": ActivationConf, "data": DataConf}


@dataclass
class ModelConf:
    name: str = MISSING
    depth: int = MISSING
    width: int = MISSING
    fc_width: Optional[int] = None  # the CNN's hidden Linear; unused (null) by the MLP
    init: Optional[str] = None  # null = the activation's recommended init


@dataclass
class OptimizerConf:
    name: str = MISSING
    lr: float = MISSING
    weight_decay: float = 0.0
    momentum: Optional[float] = None  # SGD's; null for Adam
    schedule: str = "none"


@dataclass
class TrainerConf:
    max_epochs: int = 20
    deterministic: bool = True
    precision: str = "32-true"  # Lightning's names: 32-true, 64-true, bf16-mixed, 16-mixed
    progress: str = "auto"
    logger: str = "csv"
    threads: Optional[int] = None
    checkpoint_every_n_epochs: int = 5
    tf32: bool = False
    steps_per_call: int = 32
    compile: bool = False


# flush_seconds: an int in the YAML (30) and any number allowed; float would turn 30 into 30.0 in the
# resolved config and so change every run's config hash
Seconds = Union[int, float]


@dataclass
class DeadUnitsConf:
    enabled: bool = True
    every_n_epochs: int = 1
    probe_size: int = 512
    tol: float = 1.0e-6
    tau: float = 0.1
    flush_seconds: Seconds = 30


@dataclass
class GradFlowConf:
    enabled: bool = True
    every_n_steps: int = 25
    flush_seconds: Seconds = 30


@dataclass
class ProbesConf:
    dead_units: DeadUnitsConf = field(default_factory=DeadUnitsConf)
    grad_flow: GradFlowConf = field(default_factory=GradFlowConf)


@dataclass
class Config:
    """conf/config.yaml; its keys are documented there. Groups first, as the YAML composes them."""

    activation: Any = MISSING  # typed loosely: LOOSE
    data: Any = MISSING  # typed loosely: LOOSE
    model: ModelConf = MISSING
    optimizer: OptimizerConf = MISSING
    trainer: TrainerConf = field(default_factory=TrainerConf)
    probes: ProbesConf = field(default_factory=ProbesConf)
    experiment: str = "${data.name}_${model.name}"
    seed: int = 0
    seeds: Optional[List[int]] = None
    activations: Optional[List[str]] = None
    lrs: Optional[List[float]] = None
    lr_table: Optional[str] = None
    vectorize: Any = "auto"  # auto, true or false (actlab.checks.use_vectorized)
    vectorize_max_k: Optional[int] = 32
    device: str = "auto"
    overwrite: bool = False
    run_dir: Optional[str] = "runs/${data.name}/${model.name}/${activation.name}/seed${seed}"


ConfigStore.instance().store(name="base_config", node=Config)


def _finite(v) -> bool:
    return not math.isnan(v) and not math.isinf(v)


# What a type cannot say: key -> (test of a value of the schema's type, what the key must be). A value
# failing its test is refused with "<key> <what>, got <value>"; a value of the wrong type (refused by
# the schema at compose) is reported with the same words (actlab.config.error_line).
RANGES: dict[str, tuple[Any, str]] = {
    "seed": (
        lambda v: 0 <= v <= SEED_MAX,
        f"must be an integer in 0..{SEED_MAX} (2**32 - 1, numpy's seed range)",
    ),
    "optimizer.lr": (lambda v: v > 0 and _finite(v), "must be > 0"),
    "optimizer.weight_decay": (lambda v: v >= 0 and _finite(v), "must be >= 0"),
    "model.depth": (lambda v: v >= 1, "must be an integer >= 1"),
    "model.width": (lambda v: v >= 1, "must be an integer >= 1"),
    "model.init": (lambda v: v in (None, *INITS), f"must be one of {', '.join(INITS)} (or null)"),
    "trainer.max_epochs": (lambda v: v >= 1, "must be an integer >= 1"),
    "trainer.checkpoint_every_n_epochs": (lambda v: v >= 0, "must be an integer >= 0 (0 = no checkpoints)"),
    "trainer.steps_per_call": (lambda v: v >= 1, "must be an integer >= 1"),
    "data.batch_size": (lambda v: v >= 1, "must be an integer >= 1"),
    "vectorize_max_k": (lambda v: v is None or v >= 1, "must be an integer >= 1 or null"),
}

# The probes' ranges, checked only for a probe that is enabled (actlab.checks.check_probes).
PROBE_RANGES: dict[str, tuple[Any, str]] = {
    "probes.dead_units.every_n_epochs": (lambda v: v >= 1, "must be an integer >= 1"),
    "probes.dead_units.probe_size": (lambda v: v >= 1, "must be an integer >= 1"),
    "probes.dead_units.tol": (lambda v: v >= 0, "must be a number >= 0"),
    "probes.dead_units.tau": (lambda v: v >= 0, "must be a number >= 0"),
    "probes.dead_units.flush_seconds": (lambda v: v >= 0, "must be a number >= 0"),
    "probes.grad_flow.every_n_steps": (lambda v: v >= 1, "must be an integer >= 1"),
    "probes.grad_flow.flush_seconds": (lambda v: v >= 0, "must be a number >= 0"),
}

# the words for a type of the schema, in a one-line error
_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def type_of(key: str) -> Any:
    """The schema's type of a dotted key (``model.depth``, ``seeds[0]``), or Any where it has none."""
    tp: Any = Config
    for part in key.replace("[", ".[").split("."):
        if tp is Config and part in LOOSE:
            tp = LOOSE[part]
        elif part.startswith("["):  # a list element
            args = [a for a in get_args(tp) if a is not type(None)]
            tp = args[0] if get_origin(tp) is Union and args else tp
            tp = get_args(tp)[0] if get_origin(tp) in (list, List) else Any
        elif is_dataclass(tp) and part in {f.name for f in fields(tp)}:
            tp = get_type_hints(tp)[part]
        else:
            return Any
    return tp


def describe(key: str) -> str:
    """What `key` must be, in words: its range's wording (which names the type), else its type's."""
    base = key.split("[")[0]
    what = {**RANGES, **PROBE_RANGES}.get(key, (None, ""))[1].removeprefix("must be ")
    tp = type_of(key)
    args = get_args(tp)
    optional = get_origin(tp) is Union and type(None) in args and len(args) == 2
    inner = next((a for a in args if a is not type(None)), tp) if optional else tp
    if "[" in key:
        return f"{_WORDS.get(inner, 'a value of type ' + str(inner))} (an element of the list {base})"
    if get_origin(inner) in (list, List):
        words = f"a list of {_WORDS.get(get_args(inner)[0], 'values').removeprefix('an ').removeprefix('a ')}s"
    elif get_origin(inner) is Union:
        words = " or ".join(_WORDS.get(a, str(a)) for a in get_args(inner))
    else:
        words = _WORDS.get(inner, f"of type {getattr(inner, '__name__', inner)}")
    if what and any(w in what for w in ("integer", "number", "one of")):
        return what
    words = f"{words} {what}" if what else words
    return f"{words} (or null)" if optional and "null" not in words else words
