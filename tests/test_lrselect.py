"""actlab.lrselect: each activation's learning rate from the validation split, and the CLI's lr_table."""

import math

import pandas as pd
import pytest
from conftest import run_cli

from actlab import lrselect


def _summary(act, lr, seed, val, diverged=False, experiment="e", task="classification"):
    return {
        "experiment": experiment,
        "activation": act,
        "lr": lr,
        "seed": seed,
        "task": task,
        "best_val_acc": val,
        "best_val_loss": 1 - val,
        "diverged": diverged,
    }


def test_the_best_mean_validation_accuracy_wins_per_activation():
    runs = [
        _summary("relu", 1e-3, 0, 0.60),
        _summary("relu", 1e-3, 1, 0.62),
        _summary("relu", 1e-2, 0, 0.70),
        _summary("relu", 1e-2, 1, 0.50),  # mean 0.60 < 0.61
        _summary("tanh", 1e-3, 0, 0.40),
        _summary("tanh", 1e-2, 0, 0.55),
    ]
    t = lrselect.select(runs)
    assert lrselect.chosen(t) == {"relu": 1e-3, "tanh": 1e-2}
    row = t[(t["activation"] == "relu") & (t["lr"] == 1e-3)].iloc[0]
    assert (
        row["n_seeds"] == 2 and row["mean"] == pytest.approx(0.61) and row["std"] == pytest.approx(0.0141421, rel=1e-4)
    )
    assert t.groupby("activation")["chosen"].sum().tolist() == [1, 1]  # exactly one rate per activation


def test_a_diverged_rate_scores_worst_and_ties_go_to_the_smaller_rate():
    runs = [
        _summary("relu", 1e-2, 0, math.nan, diverged=True),
        _summary("relu", 1e-2, 1, 0.99),  # one diverged seed: mean (0 + 0.99) / 2
        _summary("relu", 1e-3, 0, 0.60),
        _summary("relu", 1e-3, 1, 0.60),
        _summary("gelu", 1e-3, 0, 0.70),
        _summary("gelu", 3e-3, 0, 0.70),
    ]
    t = lrselect.select(runs)
    assert lrselect.chosen(t) == {"relu": 1e-3, "gelu": 1e-3}
    assert int(t[(t["activation"] == "relu") & (t["lr"] == 1e-2)]["n_diverged"].iloc[0]) == 1


def test_regression_selects_the_lowest_validation_loss():
    runs = [_summary("relu", lr, 0, v, task="regression") for lr, v in ((1e-3, 0.2), (1e-2, 0.9))]
    # best_val_loss = 1 - val: 0.8 at 1e-3, 0.1 at 1e-2
    assert lrselect.chosen(lrselect.select(runs)) == {"relu": 1e-2}


def test_the_cli_trains_each_activation_at_its_chosen_rate(tmp_path):
    table = tmp_path / "lr.csv"
    pd.DataFrame(
        [
            {"experiment": "digits_mlp", "activation": "relu", "lr": 0.003, "chosen": True},
            {"experiment": "digits_mlp", "activation": "relu", "lr": 0.001, "chosen": False},
            {"experiment": "digits_mlp", "activation": "tanh", "lr": 0.01, "chosen": True},
        ]
    ).to_csv(table, index=False)
    p = run_cli(
        "activations=[relu,tanh]",
        "seeds=[0]",
        f"lr_table={table}",
        "trainer.max_epochs=1",
        "model.width=8",
        "trainer.progress=quiet",
        "run_dir=runs/${activation.name}/seed${seed}",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    import json

    lrs = {
        a: json.loads((tmp_path / "runs" / a / "seed0" / "summary.json").read_text())["lr"] for a in ("relu", "tanh")
    }
    assert lrs == {"relu": 0.003, "tanh": 0.01}
    # an activation the table does not cover is refused in one line, before anything trains
    p = run_cli(
        "activations=[gelu]", "seeds=[0]", f"lr_table={table}", "run_dir=r/${activation.name}/s${seed}", cwd=tmp_path
    )
    assert p.returncode == 2 and "chose no learning rate for 'gelu'" in p.stderr and not (tmp_path / "r").exists()
