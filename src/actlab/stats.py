"""Statistics across seeds: `python -m actlab.stats --summary results/summary.parquet --out-dir results/stats`.

Reads the one-row-per-run table written by `actlab.aggregate` and writes, atomically:

  accuracy.csv  per (experiment, activation): n seeds, mean, std, SEM and a 95% confidence
                interval of the test accuracy (and of the final unit fractions, in long form).
  vs_relu.csv   per (experiment, activation != baseline): the paired difference to the baseline
                activation (ReLU; paired by seed), its 95% CI, the exact sign-flip p-value and its
                Holm correction, the paired t-test (for reference), the TOST equivalence test within
                EQUIVALENCE_MARGIN, and the minimum detectable difference of this comparison.
  power.csv     per experiment: what the experiment can detect at all: its seeds, the spread of
                the paired differences, the minimum detectable difference (80% power) and the
                smallest p-value the exact test can reach with that many seeds, before and after Holm.
  compute.csv   per (experiment, activation): seconds per epoch (mean, 95% CI) and its ratio to
                the baseline's mean, for the "smooth activations cost more compute" claim.

Methods, stated once:
- Confidence intervals are two-sided Student t-intervals, mean +- t_{0.975, n-1} * s / sqrt(n), with
  s the sample standard deviation (ddof=1), from scipy.stats.t.interval. They assume roughly normal
  per-seed values; with n = 5 seeds t_{0.975, 4} = 2.776, so they are wide on purpose. n < 2 gives NaN.
- The comparison to the baseline pairs runs by seed (same seed = same initialisation RNG stream and
  data order), over the seeds both activations finished with a finite value. The test is the exact
  sign-flip permutation test of the mean difference (scipy.stats.permutation_test, one sample,
  permutation_type='samples'): under H0 each difference is symmetric about 0, so all 2^n sign
  patterns are equally likely; p = the fraction of patterns whose |mean| reaches the observed one.
  Exact for n <= EXACT_MAX_N, else Monte Carlo with a fixed seed (p then counts the observed pattern,
  so it is never 0). No normality is assumed, and no p of 0 arises when every seed moved by the same
  amount: then only the all-plus and all-minus patterns reach it, p = 2 / 2^n (0.0625 for n = 5).
  The smallest attainable p is 2 / 2^n: with 5 seeds nothing can be separated at the 5% level; the
  paired t-test (scipy.stats.ttest_1samp on the differences) is reported beside it, not used.
- Multiple comparisons: Holm's step-down correction (Holm 1979), applied within each family = one
  experiment and one metric (the 10 non-baseline activations of the default sweep).
  It controls the family-wise error rate without assuming independence.
- Equivalence ("close"): two one-sided tests (TOST, Schuirmann 1987) with margin Delta =
  EQUIVALENCE_MARGIN, each the exact one-sided sign-flip test of the shifted differences (d + Delta
  against "mean > 0", d - Delta against "mean < 0"); p_tost = the larger one-sided p. Equivalent when
  p_tost < ALPHA. Not Holm-corrected: a claim of closeness is about one named pair.
- Minimum detectable difference: the smallest true mean difference a two-sided paired t-test at ALPHA
  detects with probability POWER, given n pairs and the SD s of the differences: delta = d_z * s
  with d_z solving P(|T'| > t_{1-alpha/2, n-1}) = POWER, T' noncentral t (df n - 1, noncentrality
  d_z sqrt(n)) (scipy.stats.nct). The exact sign-flip test has at most this power, and none at all
  when 2 / 2^n >= ALPHA.
"""

from __future__ import annotations

import argparse
import math
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

EXP = ["experiment", "dataset", "model"]  # one experiment of the sweep (dataset and model ride along)
GROUP = [*EXP, "activation"]
CONFIDENCE = 0.95
ALPHA = 0.05  # the level of every test, before (difference) or without (equivalence) Holm
POWER = 0.80  # the power the minimum detectable difference is stated for
# Equivalence margin for "close" claims: 1 percentage point of test accuracy, a difference too small
# to choose an activation by. Fixed before the data, not fitted to them; whether the seeds can show
# equivalence within it depends on the spread of the paired differences (power.csv's sd_diff).
EQUIVALENCE_MARGIN = 0.01
EXACT_MAX_N = 16  # up to 2^16 = 65,536 sign patterns: enumerated exactly; beyond, Monte Carlo
MC_RESAMPLES = 99_999
MC_SEED = 0
METRICS = (
    "test_acc",
    "final_dead_fraction",
    "final_dormant_fraction",
    "final_saturated_fraction",
    "final_no_gradient_fraction",
    "final_low_variance_fraction",
)


def t_interval(values, confidence: float = CONFIDENCE) -> dict:
    """n, mean, std (ddof=1), sem and the two-sided Student-t confidence interval of `values`.

    NaNs are dropped first. With fewer than two values std/sem/CI are NaN; with zero spread the
    interval collapses to the mean.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "sem": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    std = float(x.std(ddof=1))
    sem = std / math.sqrt(n)
    if sem == 0:  # scipy's interval would be (nan, nan) at scale 0; every value is the mean
        return {"n": n, "mean": mean, "std": std, "sem": sem, "ci_low": mean, "ci_high": mean}
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return {"n": n, "mean": mean, "std": std, "sem": sem, "ci_low": float(low), "ci_high": float(high)}


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order.

    Sort the m p-values ascending, p_(1) <= ... <= p_(m); adjusted p_(i) = max_{j <= i} min(1,
    (m - j + 1) p_(j)). Rejecting where adjusted <= alpha is Holm's procedure at level alpha. NaN
    p-values (comparisons that could not be tested) are left NaN and do not count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def sign_flip_p(d, alternative: str = "two-sided") -> float:
    """p-value of the sign-flip permutation test of mean(d) = 0 (d: paired differences, NaN dropped).

    Exact over all 2^n sign patterns for n <= EXACT_MAX_N, else Monte Carlo (MC_RESAMPLES, seed
    MC_SEED). Never 0: the observed pattern is always one of those counted. NaN for n < 2 (one
    pair cannot be tested; scipy refuses it too).
    """
    from scipy import stats

    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return math.nan
    exact = len(d) <= EXACT_MAX_N
    res = stats.permutation_test(
        (d,),
        np.mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf if exact else MC_RESAMPLES,
        alternative=alternative,
        rng=None if exact else MC_SEED,
    )
    return float(res.pvalue)


def tost_p(d, margin: float = EQUIVALENCE_MARGIN) -> float:
    """TOST p-value of |mean(d)| < margin: the larger of the two one-sided sign-flip p-values, of
    d + margin against "mean > 0" (H0: mean <= -margin) and of d - margin against "mean < 0"."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return math.nan
    return max(sign_flip_p(d + margin, "greater"), sign_flip_p(d - margin, "less"))


@cache
def mde_effect_size(n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Standardised minimum detectable difference d_z = delta / sd of a two-sided paired (one-sample)
    t-test with n pairs: the d_z at which P(|T'| > t_{1-alpha/2, n-1}) = power, T' ~ noncentral t with
    df = n - 1 and noncentrality d_z sqrt(n). NaN for n < 2."""
    from scipy import optimize, stats

    if n < 2:
        return math.nan
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(dz: float) -> float:
        nc = dz * math.sqrt(n)
        lower = stats.nct.cdf(-crit, df, nc)  # the wrong-sign tail: tiny, and NaN where scipy underflows
        return stats.nct.sf(crit, df, nc) + (lower if np.isfinite(lower) else 0.0) - power

    hi = 1.0
    while shortfall(hi) < 0:  # widen the bracket (power rises with d_z); n = 2 needs d_z of tens
        hi *= 2
        if hi > 1e4:
            return math.nan
    return float(optimize.brentq(shortfall, 0.0, hi, xtol=1e-10))


def mde(n: int, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Minimum detectable mean difference (metric units) with n pairs whose differences have SD `sd`."""
    return mde_effect_size(int(n), alpha, power) * sd if np.isfinite(sd) else math.nan


def min_sign_flip_p(n: int) -> float:
    """The smallest two-sided p-value the exact sign-flip test can give with n pairs: 2 / 2^n."""
    return min(1.0, 2.0 ** (1 - n)) if n >= 1 else math.nan


def paired_test(diffs, margin: float = EQUIVALENCE_MARGIN) -> dict:
    """Everything the article reports about paired differences (b - a per seed): n, mean, SD, the 95%
    t-interval, the exact sign-flip p (p_value), the paired t-test (t, p_ttest; NaN when the
    differences have no spread, where it is undefined), the TOST p-value within +-margin, and the
    minimum detectable difference (mde) for this n and SD."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    ci = t_interval(d)
    t = p_t = math.nan
    if len(d) >= 2 and ci["std"] > 1e-12 * max(1.0, abs(ci["mean"])):  # spread above rounding noise
        res = stats.ttest_1samp(d, 0.0)  # == ttest_rel(b, a) on the pairs
        t, p_t = float(res.statistic), float(res.pvalue)
    return {
        "n_pairs": ci["n"],
        "mean_diff": ci["mean"],
        "std_diff": ci["std"],
        "ci_low": ci["ci_low"],
        "ci_high": ci["ci_high"],
        "p_value": sign_flip_p(d),
        "t": t,
        "p_ttest": p_t,
        "margin": margin,
        "p_tost": tost_p(d, margin),
        "mde": mde(ci["n"], ci["std"]),
    }


def _check_columns(df: pd.DataFrame, needed, where: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: the summary table lacks column(s) {', '.join(missing)}")


def accuracy_table(summary: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    """Long table: one row per (experiment, activation, metric) with t-interval statistics.

    Diverged runs enter with their (NaN) accuracy dropped; `n_runs` and `n_diverged` say how many.
    """
    _check_columns(summary, [*GROUP, "seed", "test_acc"], "accuracy")
    rows = []
    for key, g in summary.groupby(GROUP, sort=True):
        diverged = int(g["diverged"].astype(bool).sum()) if "diverged" in g else 0
        for metric in metrics:
            if metric not in g or g[metric].isna().all():
                continue
            rows.append(
                {
                    **dict(zip(GROUP, key)),
                    "metric": metric,
                    "n_runs": len(g),
                    "n_diverged": diverged,
                    **t_interval(g[metric]),
                    "confidence": CONFIDENCE,
                    "interval": "student-t",
                }
            )
    return pd.DataFrame(rows)


def vs_baseline(summary: pd.DataFrame, baseline: str = "relu", metric: str = "test_acc") -> pd.DataFrame:
    """Paired-by-seed difference (activation - baseline) per (experiment, activation): the exact
    sign-flip p-value and its Holm correction within each experiment, the t-test beside
    it, TOST equivalence within EQUIVALENCE_MARGIN, and the minimum detectable difference."""
    _check_columns(summary, [*GROUP, "seed", metric], "vs_baseline")
    rows = []
    for (experiment, dataset, model), g in summary.groupby(EXP, sort=True):
        base = g[g["activation"] == baseline].set_index("seed")[metric]
        if base.empty:
            raise ValueError(f"no {baseline!r} runs for experiment {experiment}: nothing to pair with")
        if base.index.duplicated().any():
            raise ValueError(f"{experiment}/{baseline}: duplicate seeds {sorted(base.index[base.index.duplicated()])}")
        for act, a in g[g["activation"] != baseline].groupby("activation", sort=True):
            a = a.set_index("seed")[metric]
            paired = pd.concat({"a": a, "b": base}, axis=1, join="inner").dropna()
            rows.append(
                {
                    "experiment": experiment,
                    "dataset": dataset,
                    "model": model,
                    "activation": act,
                    "baseline": baseline,
                    "metric": metric,
                    "mean": float(a.mean()),
                    "baseline_mean": float(base.mean()),
                    **paired_test(paired["a"] - paired["b"]),
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = np.nan
    out["family_size"] = 0
    for _, idx in out.groupby(["experiment", "metric"]).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p_value"])
        out.loc[idx, "family_size"] = int(out.loc[idx, "p_value"].notna().sum())
    out["significant_05"] = out["p_holm"] < ALPHA
    out["equivalent"] = out["p_tost"] < ALPHA
    out["test"] = "exact sign-flip permutation test (two-sided), Holm per experiment; TOST by sign-flip"
    return out


def power_table(vs: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, metric) of a vs_baseline table: what the experiment can detect.

    sd_diff pools the comparisons' variances of the paired differences (root mean variance); mde is
    the minimum detectable difference of one comparison at ALPHA, mde_holm that of the first Holm
    step (alpha / m, the most lenient level any comparison of the family is tested at); min_p and
    min_p_holm the smallest p the exact sign-flip test can give with n pairs, alone and after Holm
    over m comparisons; can_separate whether min_p_holm < ALPHA at all; seeds_needed the fewest pairs
    for which it is.
    """
    rows = []
    if vs.empty:
        return pd.DataFrame(rows)
    for (experiment, dataset, model, metric), g in vs.groupby([*EXP, "metric"], sort=True):
        n = int(g["n_pairs"].min())
        m = int(g["family_size"].max())
        var = g["std_diff"].pow(2)
        sd = float(np.sqrt(var.mean())) if var.notna().any() else math.nan
        min_p = min_sign_flip_p(n)
        need = next(k for k in range(1, 64) if min(1.0, max(m, 1) * min_sign_flip_p(k)) < ALPHA)
        rows.append(
            {
                "experiment": experiment,
                "dataset": dataset,
                "model": model,
                "metric": metric,
                "n_pairs": n,
                "family_size": m,
                "sd_diff": sd,
                "alpha": ALPHA,
                "power": POWER,
                "mde_dz": mde_effect_size(n),
                "mde": mde(n, sd),
                "mde_holm": mde(n, sd, ALPHA / max(m, 1)),
                "min_p": min_p,
                "min_p_holm": min(1.0, max(m, 1) * min_p),
                "can_separate": min(1.0, max(m, 1) * min_p) < ALPHA,
                "seeds_needed": need,
                "margin": EQUIVALENCE_MARGIN,
                "min_p_tost": 2.0**-n if n else math.nan,
            }
        )
    return pd.DataFrame(rows)


def compute_table(summary: pd.DataFrame, baseline: str = "relu") -> pd.DataFrame:
    """Seconds per epoch per (experiment, activation): t-interval and the ratio to the baseline;
    `measured_per_model` false (and `shared_by` the models per job) when the runs were trained
    vectorised, so that their time is the job's, divided: not a per-run measurement."""
    _check_columns(summary, [*GROUP, "seconds_per_epoch"], "compute")
    rows = []
    for key, g in summary.groupby(GROUP, sort=True):
        row = {**dict(zip(GROUP, key)), **t_interval(g["seconds_per_epoch"])}
        # A vectorised job trains k models in one computation: its time / k is the same for all of
        # them, not a measurement of one model. Only runs trained alone (k = 1) measure their own time.
        k = g["vectorized.k"].fillna(1) if "vectorized.k" in g else pd.Series(1, index=g.index)
        row["shared_by"] = int(k.max())
        row["measured_per_model"] = bool((k == 1).all())
        if "device" in g:
            row["device"] = ",".join(sorted(set(map(str, g["device"]))))
        rows.append(row)
    out = pd.DataFrame(rows).rename(columns={"mean": "seconds_per_epoch"})
    base = out[out["activation"] == baseline].set_index("experiment")["seconds_per_epoch"]
    out["ratio_to_" + baseline] = [
        row.seconds_per_epoch / base.get(row.experiment, math.nan) for row in out.itertuples()
    ]
    return out


def read_summary(path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def write_all(summary: pd.DataFrame, out_dir, baseline: str = "relu") -> dict[str, Path]:
    from actlab import atomic

    out_dir = Path(out_dir)
    vs = vs_baseline(summary, baseline)
    tables = {
        "accuracy": accuracy_table(summary),
        "vs_relu": vs,
        "power": power_table(vs),
        "compute": compute_table(summary, baseline),
    }  # all computed before anything is written
    paths = {}
    for name, df in tables.items():
        paths[name] = out_dir / f"{name}.csv"
        atomic.write_csv(paths[name], df)
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m actlab.stats", description=__doc__.split("\n")[0])
    p.add_argument(
        "--summary",
        type=Path,
        default=Path("results/summary.parquet"),
        help="one row per run (parquet or csv), from actlab.aggregate",
    )
    p.add_argument("--out-dir", type=Path, default=Path("results/stats"))
    p.add_argument("--baseline", default="relu", help="activation every other one is paired with")
    args = p.parse_args(argv)
    try:
        summary = read_summary(args.summary)
        paths = write_all(summary, args.out_dir, args.baseline)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in paths.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
