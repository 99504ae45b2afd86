"""Experiments are the tables' key: the article picks the experiment each claim rests on by its data,
and one dataset and model can appear at several depths (paper/bookdata.py on a hand-made table)."""

import importlib
import json
import sys

import pandas as pd
import pytest
from conftest import ROOT


@pytest.fixture
def bd(tmp_path, monkeypatch):
    rows = []
    for exp, dataset, depth in (
        ("mnist1d_mlp", "mnist1d", 2),
        ("mnist1d_mlp_deep", "mnist1d", 8),
        ("sub", "mnist_subset", 2),
    ):
        for act in ("relu", "gelu"):
            for seed in range(3):
                rows.append(
                    {
                        "experiment": exp,
                        "dataset": dataset,
                        "model": "mlp",
                        "depth": depth,
                        "width": 100,
                        "activation": act,
                        "seed": seed,
                        "test_acc": 0.9,
                        "run_dir": f"results/runs/{exp}/k/{act}/seed{seed}",
                    }
                )
    (tmp_path / "summary.csv").write_text(pd.DataFrame(rows).to_csv(index=False))
    sweep = {
        "experiments": [
            {"name": "mnist1d_mlp", "dataset": "mnist1d", "model": "mlp"},
            {"name": "mnist1d_mlp_deep", "dataset": "mnist1d", "model": "mlp"},
            {"name": "sub", "dataset": "mnist_subset", "model": "mlp"},
        ]
    }
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    monkeypatch.setenv("ACTLAB_RESULTS", str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT / "paper"))
    mod = importlib.import_module("bookdata")
    mod = importlib.reload(mod)
    yield mod
    sys.modules.pop("bookdata", None)


def test_experiments_keep_the_sweeps_order_and_names(bd):
    assert bd.experiments() == ["mnist1d_mlp", "mnist1d_mlp_deep", "sub"]
    assert bd.experiment_name("mnist1d_mlp_deep") == "MNIST-1D, 8\u00d7100 MLP"
    assert bd.activations("sub") == ["relu", "gelu"]


def test_claim_a_about_mnist_rests_on_the_mnist_subset_not_the_main_experiment(bd):
    """Claim (a) is about MNIST: without full MNIST it rests on the real-MNIST subset (said so), never
    on the sweep's first experiment when the subset is there."""
    exp, basis = bd.experiment_for("mnist")
    assert exp == "sub"
    assert "subset" in basis and "MNIST" in basis


def test_a_claim_about_a_dataset_picks_the_shallowest_or_deepest_net(bd):
    assert bd.experiment_for("mnist1d")[0] == "mnist1d_mlp"
    assert bd.experiment_for("mnist1d", depth="deepest")[0] == "mnist1d_mlp_deep"
