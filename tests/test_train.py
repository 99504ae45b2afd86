"""One Hydra-configured Lightning run: outputs, accuracy, determinism, divergence, bad input."""

import json
import math
import os

import pandas as pd
import pytest
from conftest import run_cli

from actlab import activations
from actlab.train import run

SHORT = ("trainer.max_epochs=2", "probes.dead_units.enabled=false", "probes.grad_flow.enabled=false")
METRICS = ("test_acc", "test_loss", "best_val_acc", "epochs", "diverged")


def test_cli_default_digits_gelu_reaches_95_percent(tmp_path):
    out = tmp_path / "run"
    p = run_cli("activation=gelu", "seed=0", f"run_dir={out}")
    assert p.returncode == 0, p.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["test_acc"] >= 0.95 and not s["diverged"]
    for key in (
        "activation",
        "seed",
        "dataset",
        "model",
        "depth",
        "width",
        "test_acc",
        "test_loss",
        "best_val_acc",
        "epochs",
        "diverged",
        "train_seconds",
        "versions",
        "git_commit",
    ):
        assert key in s, key
    assert (s["activation"], s["dataset"], s["model"], s["epochs"]) == ("gelu", "digits", "mlp", 20)
    assert set(s["versions"]) >= {"python", "torch", "lightning"}
    m = pd.read_csv(out / "metrics.csv")
    assert list(m.columns[:5]) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert len(m) == 20 and m["epoch"].tolist() == list(range(1, 21))
    cfg = (out / "config.yaml").read_text()
    assert "name: gelu" in cfg and "${" not in cfg  # resolved
    assert "epoch  20" in p.stdout  # quiet per-epoch lines when not on a terminal


@pytest.mark.parametrize("name", activations.NAMES)
def test_every_activation_trains(compose, tmp_path, name):
    s = run(compose(f"activation={name}", f"run_dir={tmp_path}", *SHORT))
    assert s["epochs"] == 2 and not s["diverged"] and s["test_acc"] > 0.5, s


def test_same_config_and_seed_give_identical_metrics(compose, tmp_path):
    a = run(compose("activation=prelu", "seed=3", f"run_dir={tmp_path / 'a'}", *SHORT))
    b = run(compose("activation=prelu", "seed=3", f"run_dir={tmp_path / 'b'}", *SHORT))
    c = run(compose("activation=prelu", "seed=4", f"run_dir={tmp_path / 'c'}", *SHORT))
    assert [a[k] for k in METRICS] == [b[k] for k in METRICS]
    assert a["test_loss"] != c["test_loss"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a/metrics.csv").drop(columns="seconds"),
        pd.read_csv(tmp_path / "b/metrics.csv").drop(columns="seconds"),
    )


def test_split_is_fixed_by_split_seed_not_model_seed(compose):
    from actlab import data

    s0 = data.load(compose("seed=0").data)
    s1 = data.load(compose("seed=1").data)
    s2 = data.load(compose("data.split_seed=1").data)
    assert (s0.y_test == s1.y_test).all() and not (s0.y_test == s2.y_test).all()
    assert len(s0.y_train) + len(s0.y_val) + len(s0.y_test) == 1797
    assert abs(s0.x_train.mean().item()) < 1e-5  # standardised on the training split


def test_cnn_and_sgd_cosine(compose, tmp_path):
    s = run(
        compose(
            "model=cnn", "optimizer=sgd", "optimizer.schedule=cosine", "activation=elu", f"run_dir={tmp_path}", *SHORT
        )
    )
    assert s["model"] == "cnn" and s["test_acc"] > 0.3


def test_synthetic_regression_and_classification(compose, tmp_path):
    r = run(compose("data=synthetic_abs", "activation=relu", f"run_dir={tmp_path / 'r'}", *SHORT))
    assert r["task"] == "regression" and math.isnan(r["test_acc"]) and r["test_loss"] < 1.0
    c = run(compose("data=synthetic", "activation=tanh", f"run_dir={tmp_path / 'c'}", *SHORT))
    assert c["task"] == "classification" and 0 <= c["test_acc"] <= 1


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_prelu_slopes_get_no_weight_decay(compose, model):
    """The engine's optimizer decays the Linear/Conv weights only: never biases, never PReLU's slope."""
    from actlab import data, engine, fit, models
    from actlab.train import act_params

    cfg = compose("activation=prelu", "optimizer.weight_decay=0.1", f"model={model}")
    splits = data.load(cfg.data)
    nets = [models.build(cfg.model, splits.in_shape, 10, "prelu", act_params(cfg)) for _ in range(2)]
    net = fit.stack(model, nets, [(0, 2)])
    groups = engine.VecLitModel(net, "classification", cfg.optimizer, 1).configure_optimizers().param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(w) for w in net.weights} and len(net.weights) == len(models.weight_layers(nets[0]))
    n_slopes = sum(1 for _ in models.activation_layers(nets[0]))
    assert sum(1 for g in groups for p in g["params"] if id(p) not in decayed) == len(net.weights) + n_slopes


def test_diverged_run_is_a_result_not_a_crash(tmp_path):
    out = tmp_path / "run"
    p = run_cli(
        "optimizer=sgd",
        "optimizer.lr=1e12",
        "trainer.max_epochs=5",
        f"run_dir={out}",
        "probes.dead_units.enabled=false",
        "probes.grad_flow.enabled=false",
    )
    assert p.returncode == 0, p.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["diverged"] is True and s["epochs"] < 5


@pytest.mark.parametrize(
    "override,message",
    [
        ("activation=no_such_act", "unknown activation 'no_such_act'; valid: elu, gelu"),
        ("data=imagenet", "unknown data 'imagenet'; valid: "),
        ("model=resnet", "unknown model 'resnet'; valid: cnn, mlp"),
        ("optimizer=lbfgs", "unknown optimizer 'lbfgs'; valid: adam, sgd"),
        ("optimizer.lr=0", "optimizer.lr must be > 0"),
        ("optimizer.lr=-1e-3", "optimizer.lr must be > 0"),
        ("model.width=-4", "model.width must be an integer >= 1"),
        ("model.depth=0", "model.depth must be an integer >= 1"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be an integer >= 1"),
        ("seed=1.5", "seed must be an integer"),
        ("model.init=he", "model.init must be one of"),
        ("model.widht=64", "Could not override 'model.widht'."),
        ("seed=[1", "no viable alternative at input"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, override, message):
    out = tmp_path / "run"
    p = run_cli(override, f"run_dir={out}")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], p.stderr
    assert not (out / "summary.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; checked below with a file in the way")
def test_unwritable_run_dir_unprivileged(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    p = run_cli(f"run_dir={ro / 'run'}")
    assert p.returncode != 0 and "not writable" in p.stderr


def test_unwritable_run_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the run dir's parent should be")
    p = run_cli(f"run_dir={blocker / 'run'}")
    assert p.returncode != 0 and "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "is not writable" in lines[0], p.stderr


def test_a_finished_run_is_not_trained_again_nor_silently_replaced(tmp_path):
    """A run ends with one line (test metric, run dir). The same command again skips the finished run;
    a different config into the same run dir is refused in one line; overwrite=true retrains it."""
    out = tmp_path / "run"
    args = ["activation=relu", f"run_dir={out}", "trainer.max_epochs=1", "trainer.progress=quiet"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stderr.strip().splitlines()[-1].startswith(f"run {out}: test_acc ")
    mtime = (out / "summary.json").stat().st_mtime_ns
    again = run_cli(*args)
    assert again.returncode == 0 and "finished before, not retrained" in again.stderr
    assert (out / "summary.json").stat().st_mtime_ns == mtime
    other = run_cli(*args, "optimizer.lr=0.01")
    assert other.returncode == 2 and "holds a finished run of another config" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1 and (out / "summary.json").stat().st_mtime_ns == mtime
    replaced = run_cli(*args, "optimizer.lr=0.01", "overwrite=true")
    assert replaced.returncode == 0 and json.loads((out / "summary.json").read_text())["lr"] == 0.01


def test_hydra_run_dir_is_the_run_dir(tmp_path):
    """A run's dir is Hydra's output dir: `hydra.run.dir=X` puts every file of the run into X."""
    out = tmp_path / "x"
    p = run_cli("activation=gelu", "seed=0", f"hydra.run.dir={out}", *SHORT, "trainer.progress=quiet")
    assert p.returncode == 0, p.stderr
    names = {f.name for f in out.iterdir()}
    assert {"summary.json", "config.yaml", "metrics.csv", "SHA256SUMS", "train.log", ".hydra", "logs"} <= names
    assert json.loads((out / "summary.json").read_text())["run_dir"] == str(out)
    assert list(tmp_path.iterdir()) == [out] and "run_dir: " + str(out) in (out / "config.yaml").read_text()
    p = run_cli("seed=0", f"hydra.run.dir={tmp_path / 'y'}", f"run_dir={tmp_path / 'z'}", *SHORT)
    assert p.returncode == 2 and "differ" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_sweep_on_the_command_line_is_one_line():
    res = run_cli("sweep=test")
    assert res.returncode == 2 and res.stderr.strip() == (
        "error: sweep configs are Snakemake's, not a training run's: "
        "snakemake --cores all --configfile conf/sweep/test.yaml"
    )
    help_text = run_cli("--help").stdout
    assert "activation: " in help_text and "sweep:" not in help_text
