"""Issue 14: the config is typed by actlab.schema (dataclasses in Hydra's ConfigStore, extended by
conf/config.yaml). A wrong-typed value, a misspelt key or a group YAML missing a required key fails at
compose in one line (exit 2 through the CLI, nothing written); the schema changes no composed value,
so no config hash and no finished run's identity changes."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import run_cli
from omegaconf import OmegaConf
from test_reliability import QUICK, one_line_error, refused_in_process

from actlab import config, schema
from actlab.errors import ConfigError

# -----------------------------------------------------------------------------
# wrong types: one line, exit 2, nothing written


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.lr=abc", "optimizer.lr must be a number > 0, got 'abc'"),
        ("model.depth=1.5", "model.depth must be an integer >= 1, got 1.5"),
    ],
)
def test_a_typed_error_is_one_line_exit_2_through_the_cli(tmp_path, override, message):
    p = run_cli(override, f"run_dir={tmp_path}/run")
    assert p.returncode == 2, p.stderr
    assert one_line_error(p.stderr) == f"error: {message}"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["seed=abc"], "seed must be an integer in 0..4294967295 (2**32 - 1, numpy's seed range), got 'abc'"),
        (["trainer.deterministic=maybe"], "trainer.deterministic must be true or false, got 'maybe'"),
        (["trainer.threads=two"], "trainer.threads must be an integer (or null), got 'two'"),
        (["probes.dead_units.tau=x"], "probes.dead_units.tau must be a number >= 0, got 'x'"),
        (["seeds=[0,1.5]"], "seeds[1] must be an integer (an element of the list seeds), got 1.5"),
        (["seeds=3"], "seeds must be a list of integers (or null), got 3"),
        (["lrs=[0.1,x]"], "lrs[1] must be a number (an element of the list lrs), got 'x'"),
        (["model.fc_width=wide"], "model.fc_width must be an integer (or null), got 'wide'"),
        (["data.batch_size=1.5"], "data.batch_size must be an integer >= 1, got 1.5"),
        (["model.dept=3"], "Could not override 'model.dept'."),
    ],
)
def test_a_typed_error_is_one_line_in_process(tmp_path, monkeypatch, capsys, overrides, message):
    """The CLI's entry point in-process (a subprocess each would import torch each time)."""
    assert message in refused_in_process(tmp_path, monkeypatch, capsys, [*QUICK, "run_dir=runs/x", *overrides])


def test_every_range_names_its_type():
    """A wrong type is reported with the range's words, which must say what type the key has."""
    for key in [*schema.RANGES, *schema.PROBE_RANGES]:
        assert schema.type_of(key) is not schema.Any, key
        words = schema.describe(key)
        assert any(w in words for w in ("integer", "number", "one of")), (key, words)


# -----------------------------------------------------------------------------
# a group YAML that breaks the schema


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """A copy of conf/ that compose() reads."""
    dst = tmp_path / "conf"
    shutil.copytree(config.CONF_DIR, dst)
    monkeypatch.setattr(config, "CONF_DIR", dst)
    return dst


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_group_yaml_missing_a_required_key_fails(conf):
    _edit(conf / "model" / "mlp.yaml", "depth: 2 ", "# depth: 2 ")
    with pytest.raises(ConfigError) as e:
        config.compose([])
    assert "model.depth not set" in str(e.value) and "\n" not in str(e.value)


def test_a_group_yaml_with_a_wrong_type_fails(conf):
    _edit(conf / "optimizer" / "adam.yaml", "lr: 1.0e-3 ", "lr: fast ")
    with pytest.raises(ConfigError) as e:
        config.compose([])
    assert str(e.value) == "conf/optimizer/adam.yaml: optimizer.lr must be a number > 0, got 'fast'"


def test_a_group_yaml_with_an_unknown_key_fails(conf):
    _edit(conf / "trainer" / "default.yaml", "max_epochs: 20 ", "max_epoch: 20 ")
    with pytest.raises(ConfigError) as e:
        config.compose([])
    assert "max_epoch" in str(e.value) and "\n" not in str(e.value)


def test_a_new_activation_yaml_is_only_its_name(conf):
    """Adding an activation stays a registry entry + `name: x` (its parameters are free keys)."""
    (conf / "activation" / "relu6.yaml").write_text("name: relu6\nmax: 6.0\n")
    cfg = config.compose(["activation=relu6"])
    assert OmegaConf.to_container(cfg.activation) == {"name": "relu6", "max": 6.0}


# -----------------------------------------------------------------------------
# the schema changes no value: the typed compose equals the untyped compose of the same YAML files

CHOICES = [
    [],
    *[[f"activation={a}"] for a in config.choices("activation")],
    *[[f"data={d}"] for d in config.choices("data")],
    ["model=cnn", "optimizer=sgd"],
    ["optimizer.lr=0.5", "probes.dead_units.flush_seconds=2.5", "trainer.precision=64-true", "trainer.threads=1"],
    [
        "seeds=[0,1]",
        "activations=[relu,gelu]",
        "lrs=[0.001,0.01]",
        "run_dir=r/${activation.name}/${optimizer.lr}/${seed}",
    ],
]


def _untyped(conf_dir):
    _edit(conf_dir / "config.yaml", "  - base_config ", "  # - base_config ")


@pytest.mark.parametrize("overrides", CHOICES, ids=[" ".join(c) or "default" for c in CHOICES])
def test_the_schema_changes_no_composed_value(tmp_path, monkeypatch, overrides):
    monkeypatch.delenv("ACTLAB_DATA", raising=False)
    typed = config.compose(overrides)
    plain_dir = tmp_path / "conf"
    shutil.copytree(config.CONF_DIR, plain_dir)
    _untyped(plain_dir)
    monkeypatch.setattr(config, "CONF_DIR", plain_dir)
    plain = config.compose(overrides)

    def dump(c, resolve):  # JSON keeps 30 and 30.0 apart (Python's == does not)
        return json.dumps(OmegaConf.to_container(c, resolve=resolve), sort_keys=True)

    assert dump(typed, False) == dump(plain, False)
    assert dump(typed, True) == dump(plain, True)
    assert list(typed) == list(plain)  # the key order of config.yaml too
    runs_typed = config.job_configs(typed) if config.is_multi(typed) else [typed]
    runs_plain = config.job_configs(plain) if config.is_multi(plain) else [plain]
    assert [json.dumps(config.comparable(c), sort_keys=True) for c in runs_typed] == [
        json.dumps(config.comparable(c), sort_keys=True) for c in runs_plain
    ]
    assert config.config_hash(runs_typed) == config.config_hash(runs_plain)


def test_an_integer_given_for_a_number_is_stored_as_a_number():
    """The one value the schema changes: an int given to a float key (``optimizer.lr=1``) composes to
    1.0 (untyped it stayed 1, and json writes 1 and 1.0 apart). No YAML of conf/ nor sweep gives one."""
    cfg = config.compose(["optimizer.lr=1", "optimizer.weight_decay=0"])
    assert json.dumps([cfg.optimizer.lr, cfg.optimizer.weight_decay]) == "[1.0, 0.0]"
