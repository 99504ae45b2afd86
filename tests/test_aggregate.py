"""actlab.aggregate on hand-made run directories (no training)."""

import pandas as pd
import pytest

from actlab import aggregate, integrity


def make_run(root, activation, seed, dataset="digits", model="mlp", dead=None, summary=True, **extra):
    run = root / dataset / model / activation / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"seed: {seed}\n")
    pd.DataFrame(
        {
            "epoch": [1, 2],
            "train_loss": [1.0, 0.5],
            "train_acc": [0.5, 0.8],
            "val_loss": [1.1, 0.6],
            "val_acc": [0.4, 0.7],
            "seconds": [0.1, 0.1],
        }
    ).to_csv(run / "metrics.csv", index=False)
    if dead is not None:
        dead.to_csv(run / "dead_units.csv", index=False)
    pd.DataFrame(
        {"step": [1, 1], "epoch": [1, 1], "layer": ["fc1", "out"], "metric": ["grad_norm"] * 2, "value": [0.5, 0.25]}
    ).to_csv(run / "grad_flow.csv", index=False)
    if summary:
        data = {
            "experiment": f"{dataset}_{model}",
            "activation": activation,
            "seed": seed,
            "dataset": dataset,
            "model": model,
            "test_acc": 0.9 + seed / 100,
            "test_loss": 0.3,
            "best_val_acc": 0.7,
            "epochs": 2,
            "diverged": False,
            "train_seconds": 2.0,
            "seconds_per_epoch": 1.0,
            "versions": {"torch": "2.13.0", "python": "3.11"},
            "act_params": {},
            **extra,
        }
        integrity.write_summary(run, data)  # as the trainer finishes a run: SHA256SUMS, then summary.json
    return run


def seal(run):
    """Rewrite the run's SHA256SUMS for its files as they are now: as if the trainer had written them."""
    names = [n for n in (*integrity.DATA_FILES, "summary.json") if (run / n).is_file()]
    (run / "SHA256SUMS").write_text("".join(f"{integrity.sha256(run / n)}  {n}\n" for n in names))


def dead_table(last_dead=(0.5, 0.0), units=(100, 300), dormant=(0.1, 0.2)):
    rows = []
    for epoch, dead in ((0, (0.0, 0.0)), (2, last_dead)):
        for layer, d, n, dm in zip(("act1", "act2"), dead, units, dormant):
            rows += [
                (epoch, layer, "dead_fraction", d),
                (epoch, layer, "dormant_fraction", dm),
                (epoch, layer, "n_units", n),
            ]
    return pd.DataFrame(rows, columns=["epoch", "layer", "metric", "value"])


def test_tables_from_runs(tmp_path):
    root = tmp_path / "runs"
    for act in ("relu", "gelu"):
        for seed in (0, 1):
            make_run(root, act, seed, dead=dead_table())
    assert aggregate.main([str(root), "--out-dir", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert len(table) == 4
    assert list(table.columns[:5]) == ["experiment", "dataset", "model", "activation", "seed"]
    assert table[["activation", "seed"]].values.tolist() == [["gelu", 0], ["gelu", 1], ["relu", 0], ["relu", 1]]
    assert table["versions.torch"].eq("2.13.0").all()  # nested fields flattened
    # final fractions: last epoch, layers weighted by their unit counts
    assert table["final_dead_fraction"].iloc[0] == pytest.approx((0.5 * 100 + 0.0 * 300) / 400)
    assert table["final_dormant_fraction"].iloc[0] == pytest.approx((0.1 * 100 + 0.2 * 300) / 400)
    assert table["final_saturated_fraction"].isna().all()
    parquet = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    pd.testing.assert_frame_equal(
        parquet[["activation", "seed", "test_acc"]], table[["activation", "seed", "test_acc"]]
    )
    curves = tmp_path / "out" / "curves"
    metrics = pd.read_parquet(curves / "metrics.parquet")
    assert len(metrics) == 8 and {"activation", "seed", "epoch", "val_acc"} <= set(metrics.columns)
    dead = pd.read_parquet(curves / "dead_units.parquet")
    assert len(dead) == 4 * len(dead_table()) and dead["seed"].isin([0, 1]).all()
    grads = pd.read_parquet(curves / "grad_flow.parquet")
    assert set(grads.columns) >= {"dataset", "model", "activation", "seed", "step", "layer", "metric", "value"}


def test_runs_without_probes_still_aggregate(tmp_path):
    run = make_run(tmp_path / "runs", "relu", 0)
    assert aggregate.main([str(run), "--out-dir", str(tmp_path / "out")]) == 0
    assert pd.read_csv(tmp_path / "out" / "summary.csv")["final_dead_fraction"].isna().all()
    assert pd.read_parquet(tmp_path / "out" / "curves" / "dead_units.parquet").empty


def test_unfinished_runs_and_hydra_dirs_are_skipped(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root, "relu", 0)
    unfinished = make_run(root, "relu", 1, summary=False)
    hydra = root / "digits" / "mlp" / "relu" / "_jobs" / "seeds0-1" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "config.yaml").write_text("seeds: [0, 1]\n")
    assert aggregate.main([str(root), "--out-dir", str(tmp_path / "out")]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "summary.csv")) == 1
    err = capsys.readouterr().err
    assert f"skipping unfinished run {unfinished}" in err and "_jobs" not in err


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"activation": "relu", "seed": 0, "datas', "is not valid JSON"),
        ("[1, 2]", "holds a list"),
        ('{"activation": "relu", "seed": 0}', "lacks experiment, dataset, model, test_acc"),
    ],
)
def test_a_corrupt_summary_fails_naming_the_run(tmp_path, capsys, content, message):
    root = tmp_path / "runs"
    make_run(root, "relu", 0)
    bad = make_run(root, "gelu", 3)
    (bad / "summary.json").write_text(content)
    seal(bad)
    assert aggregate.main([str(root), "--out-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"run {bad}" in err and message in err
    assert not (tmp_path / "out" / "summary.csv").exists()  # nothing half-written


def test_a_corrupt_curve_fails_naming_the_run(tmp_path, capsys):
    bad = make_run(tmp_path / "runs", "relu", 0)
    (bad / "dead_units.csv").write_text("epoch,layer\n1\n")
    seal(bad)
    assert aggregate.main([str(bad), "--out-dir", str(tmp_path / "out")]) == 1
    assert f"run {bad}: dead_units.csv lacks column(s) metric, value" in capsys.readouterr().err


def test_explicit_missing_summary_and_duplicates_fail(tmp_path, capsys):
    root = tmp_path / "runs"
    run = make_run(root, "relu", 0, summary=False)
    assert aggregate.main([str(run / "summary.json"), "--out-dir", str(tmp_path / "out")]) == 1
    assert "did not finish" in capsys.readouterr().err
    a = make_run(tmp_path / "a", "relu", 0)
    b = make_run(tmp_path / "b", "relu", 0)
    assert aggregate.main([str(a), str(b), "--out-dir", str(tmp_path / "out")]) == 1
    assert "both claim" in capsys.readouterr().err


def test_no_runs_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert aggregate.main([str(tmp_path / "empty"), "--out-dir", str(tmp_path / "out")]) == 1
    assert "no finished runs" in capsys.readouterr().err
