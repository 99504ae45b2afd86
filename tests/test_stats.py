"""actlab.stats against scipy and hand-computed values on tiny tables."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from actlab import stats


def test_t_interval_matches_scipy():
    x = [0.91, 0.93, 0.92, 0.95, 0.90]
    got = stats.t_interval(x)
    mean, sem = np.mean(x), sps.sem(x)
    low, high = sps.t.interval(0.95, len(x) - 1, loc=mean, scale=sem)
    assert got["n"] == 5
    assert got["mean"] == pytest.approx(mean)
    assert got["std"] == pytest.approx(np.std(x, ddof=1))
    assert got["sem"] == pytest.approx(sem)
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((low, high))
    # by hand: t_{0.975, 4} = 2.7764451
    assert got["ci_high"] - mean == pytest.approx(2.7764451 * sem, rel=1e-6)


def test_t_interval_edge_cases():
    one = stats.t_interval([0.5])
    assert one["n"] == 1 and one["mean"] == 0.5 and math.isnan(one["ci_low"])
    assert stats.t_interval([np.nan, 0.2, 0.4])["n"] == 2  # NaNs (diverged runs) dropped
    flat = stats.t_interval([0.3, 0.3, 0.3])
    assert flat["ci_low"] == flat["ci_high"] == pytest.approx(0.3)
    assert stats.t_interval([])["n"] == 0


def test_holm_hand_computed():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone max 0.06
    p = [0.01, 0.04, 0.03, 0.005]
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_ignores_nan_and_keeps_order():
    got = stats.holm([0.5, np.nan, 0.2, 0.9])
    # m = 3 (the NaN is not a test): 0.2*3 = 0.6, 0.5*2 = 1.0, 0.9*1 -> max(1.0, 0.9) = 1.0
    assert got[0] == pytest.approx(1.0) and math.isnan(got[1])
    assert got[2] == pytest.approx(0.6) and got[3] == pytest.approx(1.0)
    assert stats.holm([]).size == 0
    assert stats.holm([0.04]) == pytest.approx([0.04])  # one test: no correction


def test_holm_ties_and_rejections_match_the_procedure():
    p = np.array([0.001, 0.011, 0.02, 0.04, 0.3])
    adj = stats.holm(p)
    alpha = 0.05
    # Holm by its definition: reject p_(i) while p_(i) <= alpha / (m - i + 1)
    m, reject = len(p), []
    for i, pi in enumerate(np.sort(p)):
        if pi > alpha / (m - i):
            break
        reject.append(pi)
    assert set(p[adj <= alpha]) == set(reject)


def _table():
    # seed order shuffled on purpose: pairing must be by seed, not by row position
    rows = [("relu", 0, 0.90), ("relu", 1, 0.92), ("relu", 2, 0.91), ("relu", 3, 0.93),
            ("gelu", 3, 0.95), ("gelu", 0, 0.93), ("gelu", 2, 0.92), ("gelu", 1, 0.94),
            ("tanh", 0, 0.89), ("tanh", 1, 0.92), ("tanh", 2, np.nan), ("tanh", 3, 0.92)]
    df = pd.DataFrame(rows, columns=["activation", "seed", "test_acc"])
    df["dataset"], df["model"] = "digits", "mlp"
    df["diverged"] = df["test_acc"].isna()
    df["seconds_per_epoch"] = df["activation"].map({"relu": 1.0, "gelu": 1.5, "tanh": 1.2})
    return df


def test_vs_baseline_pairs_by_seed_and_matches_ttest_rel():
    out = stats.vs_baseline(_table(), "relu").set_index("activation")
    relu = np.array([0.90, 0.92, 0.91, 0.93])
    gelu = np.array([0.93, 0.94, 0.92, 0.95])  # seeds 0..3
    ref = sps.ttest_rel(gelu, relu)
    g = out.loc["gelu"]
    assert g["n_pairs"] == 4
    assert g["mean_diff"] == pytest.approx(np.mean(gelu - relu))
    assert g["t"] == pytest.approx(ref.statistic)
    assert g["p_value"] == pytest.approx(ref.pvalue)
    lo, hi = sps.t.interval(0.95, 3, loc=np.mean(gelu - relu), scale=sps.sem(gelu - relu))
    assert (g["ci_low"], g["ci_high"]) == pytest.approx((lo, hi))
    # tanh diverged on seed 2: that pair is dropped
    t = out.loc["tanh"]
    tanh = np.array([0.89, 0.92, 0.92])
    ref_t = sps.ttest_rel(tanh, relu[[0, 1, 3]])
    assert t["n_pairs"] == 3 and t["p_value"] == pytest.approx(ref_t.pvalue)
    # Holm within the (dataset, model) family of 2 comparisons
    assert out["family_size"].tolist() == [2, 2]
    assert out["p_holm"].to_numpy() == pytest.approx(stats.holm(out["p_value"].to_numpy()))
    assert "relu" not in out.index


def test_vs_baseline_without_baseline_fails():
    df = _table()
    with pytest.raises(ValueError, match="no 'relu' runs"):
        stats.vs_baseline(df[df["activation"] != "relu"], "relu")


def test_accuracy_and_compute_tables():
    acc = stats.accuracy_table(_table())
    a = acc[(acc["activation"] == "tanh") & (acc["metric"] == "test_acc")].iloc[0]
    assert a["n"] == 3 and a["n_runs"] == 4 and a["n_diverged"] == 1
    assert a["mean"] == pytest.approx(np.mean([0.89, 0.92, 0.92]))
    comp = stats.compute_table(_table()).set_index("activation")
    assert comp.loc["gelu", "seconds_per_epoch"] == pytest.approx(1.5)
    assert comp.loc["gelu", "ratio_to_relu"] == pytest.approx(1.5)
    assert comp.loc["relu", "ratio_to_relu"] == pytest.approx(1.0)


def test_cli_writes_the_three_tables(tmp_path):
    src = tmp_path / "summary.csv"
    _table().to_csv(src, index=False)
    assert stats.main(["--summary", str(src), "--out-dir", str(tmp_path / "stats")]) == 0
    for name in ("accuracy", "vs_relu", "compute"):
        df = pd.read_csv(tmp_path / "stats" / f"{name}.csv")
        assert not df.empty
    assert not list((tmp_path / "stats").glob(".*.tmp"))  # atomic writes leave no temp files


def test_cli_reports_a_bad_table(tmp_path, capsys):
    src = tmp_path / "summary.csv"
    pd.DataFrame({"activation": ["relu"]}).to_csv(src, index=False)
    assert stats.main(["--summary", str(src), "--out-dir", str(tmp_path)]) == 1
    assert "lacks column" in capsys.readouterr().err
