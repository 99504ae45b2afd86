"""actlab.stats against scipy and hand-computed values on tiny tables."""

import itertools
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
    rows = [
        ("relu", 0, 0.90),
        ("relu", 1, 0.92),
        ("relu", 2, 0.91),
        ("relu", 3, 0.93),
        ("gelu", 3, 0.95),
        ("gelu", 0, 0.93),
        ("gelu", 2, 0.92),
        ("gelu", 1, 0.94),
        ("tanh", 0, 0.89),
        ("tanh", 1, 0.92),
        ("tanh", 2, np.nan),
        ("tanh", 3, 0.92),
    ]
    df = pd.DataFrame(rows, columns=["activation", "seed", "test_acc"])
    df["experiment"], df["dataset"], df["model"] = "digits_mlp", "digits", "mlp"
    df["diverged"] = df["test_acc"].isna()
    df["seconds_per_epoch"] = df["activation"].map({"relu": 1.0, "gelu": 1.5, "tanh": 1.2})
    return df


def test_vs_baseline_pairs_by_seed_sign_flip_and_ttest_rel():
    out = stats.vs_baseline(_table(), "relu").set_index("activation")
    relu = np.array([0.90, 0.92, 0.91, 0.93])
    gelu = np.array([0.93, 0.94, 0.92, 0.95])  # seeds 0..3
    ref = sps.ttest_rel(gelu, relu)
    g = out.loc["gelu"]
    assert g["n_pairs"] == 4
    assert g["mean_diff"] == pytest.approx(np.mean(gelu - relu))
    assert g["t"] == pytest.approx(ref.statistic)
    assert g["p_ttest"] == pytest.approx(ref.pvalue)
    # differences 0.03, 0.02, 0.01, 0.02, all positive: only the all-plus and all-minus of the 16
    # sign patterns reach |mean| = 0.02
    assert g["p_value"] == pytest.approx(2 / 16)
    lo, hi = sps.t.interval(0.95, 3, loc=np.mean(gelu - relu), scale=sps.sem(gelu - relu))
    assert (g["ci_low"], g["ci_high"]) == pytest.approx((lo, hi))
    # tanh diverged on seed 2: that pair is dropped
    t = out.loc["tanh"]
    tanh = np.array([0.89, 0.92, 0.92])
    assert t["n_pairs"] == 3 and t["p_value"] == pytest.approx(hand_sign_flip(tanh - relu[[0, 1, 3]]))
    assert t["p_ttest"] == pytest.approx(sps.ttest_rel(tanh, relu[[0, 1, 3]]).pvalue)
    # Holm within the (dataset, model) family of 2 comparisons, on the sign-flip p-values
    assert out["family_size"].tolist() == [2, 2]
    assert out["p_holm"].to_numpy() == pytest.approx(stats.holm(out["p_value"].to_numpy()))
    assert (out["significant_05"] == (out["p_holm"] < 0.05)).all()
    assert (out["equivalent"] == (out["p_tost"] < 0.05)).all()
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


def test_cli_writes_the_four_tables(tmp_path):
    src = tmp_path / "summary.csv"
    _table().to_csv(src, index=False)
    assert stats.main(["--summary", str(src), "--out-dir", str(tmp_path / "stats")]) == 0
    for name in ("accuracy", "vs_relu", "power", "compute"):
        df = pd.read_csv(tmp_path / "stats" / f"{name}.csv")
        assert not df.empty
    assert not list((tmp_path / "stats").glob(".*.tmp"))  # atomic writes leave no temp files


def test_cli_reports_a_bad_table(tmp_path, capsys):
    src = tmp_path / "summary.csv"
    pd.DataFrame({"activation": ["relu"]}).to_csv(src, index=False)
    assert stats.main(["--summary", str(src), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "lacks column" in err and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing partial written


# -----------------------------------------------------------------------------
# the exact sign-flip test, TOST and the minimum detectable difference


def hand_sign_flip(d, shift=0.0, alternative="two-sided"):
    """The sign-flip p-value by enumerating every sign pattern (independent of scipy)."""
    d = np.asarray(d, float) + shift
    signs = np.array(list(itertools.product([1, -1], repeat=len(d))))  # (2^n, n)
    null = (signs * d).mean(1)
    obs, tol = d.mean(), 1e-12
    if alternative == "greater":
        return np.mean(null >= obs - tol)
    if alternative == "less":
        return np.mean(null <= obs + tol)
    return np.mean(np.abs(null) >= abs(obs) - tol)


def test_identical_differences_are_not_p_zero():
    """Accuracy comes in steps: every seed can move by exactly the same amount. Then the test has no
    variance to work with; the exact sign-flip p is 2 / 2^5 = 0.0625, not 0."""
    d = [0.0125] * 5
    r = stats.paired_test(d)
    assert r["p_value"] == pytest.approx(0.0625)
    assert r["p_value"] == pytest.approx(hand_sign_flip(d))
    assert math.isnan(r["p_ttest"])  # the t-test is undefined without spread, and not reported as 0
    # the same through the table: five equal differences are not "significant" at 5%
    rows = [("relu", s, 0.9) for s in range(5)] + [("gelu", s, 0.9125) for s in range(5)]
    df = pd.DataFrame(rows, columns=["activation", "seed", "test_acc"]).assign(experiment="d_m", dataset="d", model="m")
    v = stats.vs_baseline(df).iloc[0]
    assert v["p_value"] == pytest.approx(0.0625) and not v["significant_05"]


def test_no_difference_and_too_few_pairs():
    assert stats.paired_test([0.0] * 5)["p_value"] == 1.0
    assert math.isnan(stats.paired_test([0.02])["p_value"])  # one pair cannot be tested
    assert math.isnan(stats.paired_test([])["p_tost"])


@pytest.mark.parametrize("n", [3, 5, 8])
def test_sign_flip_matches_enumeration_and_scipy(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        d = rng.normal(0.005, 0.01, n)
        p = stats.sign_flip_p(d)
        assert p == pytest.approx(hand_sign_flip(d))
        ref = sps.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
        assert p == pytest.approx(ref)
        assert p >= 2 / 2**n  # never below the floor, never 0


def test_sign_flip_monte_carlo_beyond_exact_n():
    d = np.random.default_rng(0).normal(0.3, 1.0, stats.EXACT_MAX_N + 4)
    p = stats.sign_flip_p(d)
    assert p == stats.sign_flip_p(d)  # fixed seed: reproducible
    assert p >= 1 / (stats.MC_RESAMPLES + 1)
    assert p == pytest.approx(sps.ttest_1samp(d, 0).pvalue, abs=0.03)  # large n: close to the t-test


def test_tost_hand_computed():
    margin = stats.EQUIVALENCE_MARGIN
    d = np.array([0.002, -0.004, 0.001, 0.003, -0.001])
    lower = hand_sign_flip(d, +margin, "greater")  # H0: mean <= -margin
    upper = hand_sign_flip(d, -margin, "less")  # H0: mean >= +margin
    assert lower == upper == pytest.approx(1 / 32)  # every shifted difference on one side
    assert stats.tost_p(d) == pytest.approx(max(lower, upper))
    r = stats.paired_test(d)
    assert r["p_tost"] == pytest.approx(1 / 32) and r["margin"] == margin
    # a difference straddling the margin: not equivalent
    far = np.array([0.02, -0.01, 0.015, 0.03, 0.005])
    assert stats.tost_p(far) == pytest.approx(
        max(hand_sign_flip(far, margin, "greater"), hand_sign_flip(far, -margin, "less"))
    )
    assert stats.tost_p(far) > 0.05
    # identical differences inside the margin: equivalent, with p 1/32, not 0
    assert stats.tost_p([0.004] * 5) == pytest.approx(1 / 32)


def test_mde_matches_noncentral_t_and_a_simulation():
    n, sd = 5, 0.008
    delta = stats.mde(n, sd)
    dz = delta / sd
    crit = sps.t.ppf(0.975, n - 1)
    power = sps.nct.sf(crit, n - 1, dz * math.sqrt(n)) + sps.nct.cdf(-crit, n - 1, dz * math.sqrt(n))
    assert power == pytest.approx(0.80, abs=1e-6)
    # simulation: paired differences ~ N(delta, sd); the two-sided t-test rejects 80% of the time
    rng = np.random.default_rng(0)
    d = rng.normal(delta, sd, size=(40_000, n))
    rejected = sps.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05
    assert rejected.mean() == pytest.approx(0.80, abs=0.01)
    assert stats.mde_effect_size(30) < stats.mde_effect_size(5) < stats.mde_effect_size(3)
    assert math.isnan(stats.mde(1, 0.01))


def test_power_table_states_what_five_seeds_can_separate():
    rows = [
        (a, s, 0.9 + 0.002 * s + (0.01 if a != "relu" else 0) + 0.001 * (s % 2) * (a == "gelu"))
        for a in ["relu", *[f"a{i}" for i in range(9)], "gelu"]
        for s in range(5)
    ]
    df = pd.DataFrame(rows, columns=["activation", "seed", "test_acc"]).assign(experiment="d_m", dataset="d", model="m")
    vs = stats.vs_baseline(df)
    pw = stats.power_table(vs).iloc[0]
    assert pw["n_pairs"] == 5 and pw["family_size"] == 10
    assert pw["min_p"] == pytest.approx(0.0625) and pw["min_p_holm"] == pytest.approx(0.625) and not pw["can_separate"]
    assert pw["seeds_needed"] == 9  # 10 * 2 / 2^9 = 0.039 < 0.05; 10 * 2 / 2^8 = 0.078
    assert pw["mde"] == pytest.approx(stats.mde(5, pw["sd_diff"]))
    assert pw["mde_holm"] > pw["mde"]
    assert pw["sd_diff"] == pytest.approx(np.sqrt((vs["std_diff"] ** 2).mean()))


def test_a_vectorised_jobs_time_is_not_reported_as_a_per_run_measurement():
    """A job that trains k models at once gives each the job's time / k: the same number for every
    model, not a measurement of any. compute.csv says so (and the article then shows no ms / epoch)."""
    df = _table()
    alone = stats.compute_table(df)
    assert alone["measured_per_model"].all() and (alone["shared_by"] == 1).all()
    df["vectorized.k"] = 12
    shared = stats.compute_table(df)
    assert not shared["measured_per_model"].any() and (shared["shared_by"] == 12).all()
