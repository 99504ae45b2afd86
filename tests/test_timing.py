"""The controlled timing of claim (d): python -m actlab.timing and the verdict rule of paper/claims.py on
constructed tables (its confidence intervals: test_intervals.py). Fast: tiny models, few rounds."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from actlab import activations, timing

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "paper"))
import claims  # noqa: E402

TINY = [
    "--depth",
    "1",
    "--width",
    "16",
    "--in-features",
    "8",
    "--classes",
    "3",
    "--batch-size",
    "32",
    "--samples",
    "96",
    "--repeats",
    "6",
    "--warmup",
    "1",
    "--inner",
    "2",
]


# -----------------------------------------------------------------------------
# the command line


def test_cli_writes_every_activation(tmp_path):
    out = tmp_path / "stats" / "timing.csv"
    res = run_cli("--out", str(out), *TINY, module="actlab.timing", timeout=120)
    assert res.returncode == 0, res.stderr
    t = pd.read_csv(out)
    assert list(t["activation"]) == list(activations.NAMES)  # every registered activation, registry order
    assert list(t.columns) == timing.COLUMNS
    for col in ("s_per_epoch", "ci_low", "ci_high", "ratio", "act_s", "act_ratio"):
        assert (t[col] > 0).all() and np.isfinite(t[col]).all(), col
    assert (t["ci_low"] <= t["s_per_epoch"]).all() and (t["s_per_epoch"] <= t["ci_high"]).all()
    assert (t["ratio_ci_low"] <= t["ratio"]).all() and (t["ratio"] <= t["ratio_ci_high"]).all()
    assert (t["s_per_epoch"] < 5).all()  # seconds per epoch of a 96-sample epoch: sane
    relu = t.set_index("activation").loc["relu"]
    assert relu["ratio"] == 1 and relu["ratio_ci_low"] == 1 and relu["ratio_ci_high"] == 1
    assert relu["act_ratio"] == 1
    row = t.iloc[0]
    assert (row["depth"], row["width"], row["in_features"], row["classes"]) == (1, 16, 8, 3)
    assert (row["batch_size"], row["samples"], row["steps_per_epoch"], row["repeats"]) == (32, 96, 3, 6)
    assert row["threads"] == 1 and row["device"] == "cpu" and row["torch"] and row["cpu"]
    assert row["coverage"] == pytest.approx(1 - 2 / 2**6)
    assert (t["family"] == [activations.spec(a).family for a in t["activation"]]).all()
    assert not list(out.parent.glob(".*"))  # atomic write: no temporary file left behind


def test_setting_comes_from_the_sweep_config(tmp_path):
    """Without shape flags: the composed config's model and the dataset's shape (digits: 8x8, 10 classes)."""
    a = timing.parse(
        [
            "--out",
            str(tmp_path / "t.csv"),
            "--activations",
            "relu,gelu",
            "--repeats",
            "6",
            "--warmup",
            "0",
            "--inner",
            "1",
            "--config",
            "data=digits",
            "model=mlp",
            "model.width=16",
        ]
    )
    t = timing.run(a)
    row = t.iloc[0]
    assert (row["dataset"], row["model"], row["depth"], row["width"]) == ("digits", "mlp", 2, 16)
    assert (row["in_features"], row["classes"], row["batch_size"]) == (64, 10, 64)
    assert 1000 < row["samples"] < 1797  # the training split
    assert row["config"] == "data=digits model=mlp model.width=16"
    assert list(t["activation"]) == ["relu", "gelu"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--repeats", "5"], "--repeats must be >= 6"),
        (["--activations", "relu,swish"], "unknown activation 'swish'"),
        (["--activations", "gelu,tanh"], "--baseline 'relu' is not among"),
        (["--depth", "0"], "--depth must be >= 1"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--device", "tpu"], "--device 'tpu'"),
        (["--batch-size", "x"], "invalid int value"),
        (["--no-such-flag"], "unrecognized arguments"),
        (["--config", "model.no_such_key=1"], "--config model.no_such_key=1"),
        (["--samples", "16", "--batch-size", "32"], "exceeds --samples"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        timing.main(["--out", str(tmp_path / "t.csv"), *TINY, *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "t.csv").exists()


def test_bad_arguments_on_the_real_command_line(tmp_path):
    res = run_cli("--out", str(tmp_path / "t.csv"), "--repeats", "2", module="actlab.timing", timeout=60)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == ["error: --repeats must be >= 6 (a 95% CI of the median needs 6), got 2"]


# -----------------------------------------------------------------------------
# the verdict of claim (d)


def table(ratios: dict[str, tuple[float, float]]) -> pd.DataFrame:
    rows = [{"activation": "relu", "baseline": "relu", "ratio": 1.0, "ratio_ci_low": 1.0, "ratio_ci_high": 1.0}]
    rows += [
        {"activation": a, "baseline": "relu", "ratio": (lo + hi) / 2, "ratio_ci_low": lo, "ratio_ci_high": hi}
        for a, (lo, hi) in ratios.items()
    ]
    return pd.DataFrame(rows)


SMOOTH = ["elu", "selu", "gelu", "silu", "mish", "softplus"]


def test_smooth_activations_are_the_smooth_and_exponential_families():
    assert claims.smooth_activations() == SMOOTH
    assert claims.smooth_activations(["tanh", "gelu", "relu", "elu"]) == ["elu", "gelu"]


def test_cost_outcome():
    assert claims.cost_outcome(1.15, 1.30) == "noticeably slower"
    assert claims.cost_outcome(0.95, 1.05) == "within"
    assert claims.cost_outcome(1.05, 1.15) == "unresolved"  # the CI straddles 1.10
    assert claims.cost_outcome(float("nan"), 1.0) == "unresolved"


def test_compute_verdict_gives_each_verdict():
    slow, within, straddle = (1.20, 1.30), (1.00, 1.05), (1.05, 1.20)
    assert claims.compute_verdict(table({a: slow for a in SMOOTH}))[0] == "supported"
    assert claims.compute_verdict(table({a: within for a in SMOOTH}))[0] == "contradicted"
    label, outcomes = claims.compute_verdict(table({**{a: within for a in SMOOTH}, "gelu": straddle}))
    assert label == "cannot be decided (straddles the threshold)"
    assert outcomes["gelu"] == "unresolved" and outcomes["elu"] == "within"
    label, outcomes = claims.compute_verdict(table({**{a: within for a in SMOOTH}, "mish": slow}))
    assert label == "contradicted" and outcomes["mish"] == "noticeably slower"  # the others are not
    # non-smooth activations do not count, however slow
    assert claims.compute_verdict(table({"gelu": within, "prelu": slow, "tanh": (1.5, 1.6)}))[0] == "contradicted"
    untested = "cannot be decided (not tested)"
    assert claims.compute_verdict(table({"tanh": slow}))[0] == untested
    assert claims.compute_verdict(table({"gelu": slow}).query("activation != 'relu'"))[0] == untested
    # the threshold is the article's, and can be moved
    assert claims.compute_verdict(table({"gelu": (1.06, 1.08)}), threshold=1.05)[0] == "supported"
