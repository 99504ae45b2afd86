"""Statistics across seeds: `python -m actlab.stats --summary results/summary.parquet --out-dir results/stats`.

Reads the one-row-per-run table written by `actlab.aggregate` and writes, atomically:

  accuracy.csv  per (dataset, model, activation): n seeds, mean, std, SEM and a 95% confidence
                interval of the test accuracy (and of the final dead/dormant fractions, in long form).
  vs_relu.csv   per (dataset, model, activation != baseline): the paired difference to the baseline
                activation (ReLU; paired by seed), its 95% CI, a paired t-test p-value and the
                Holm-corrected p-value.
  compute.csv   per (dataset, model, activation): seconds per epoch (mean, 95% CI) and its ratio to
                the baseline's mean, for the "smooth activations cost more compute" claim.

Methods, stated once:
- Confidence intervals are two-sided Student t-intervals, mean +- t_{0.975, n-1} * s / sqrt(n), with
  s the sample standard deviation (ddof=1). They assume the per-seed values are i.i.d. and roughly
  normal; with n = 5 seeds t_{0.975, 4} = 2.776, so the interval is wide on purpose. n < 2 gives NaN.
- The comparison to the baseline pairs runs by seed (same seed = same initialisation RNG stream and
  data order), over the seeds both activations finished with a finite value; the test is the paired
  t-test (scipy.stats.ttest_rel, two-sided) on those differences.
- Multiple comparisons: Holm's step-down correction (Holm 1979), applied within each family = one
  (dataset, model) experiment and one metric (the 10 non-baseline activations of the default sweep).
  It controls the family-wise error rate without assuming independence.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

GROUP = ["dataset", "model", "activation"]
CONFIDENCE = 0.95
METRICS = ("test_acc", "final_dead_fraction", "final_dormant_fraction", "final_saturated_fraction")


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
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sem
    return {"n": n, "mean": mean, "std": std, "sem": sem, "ci_low": mean - half, "ci_high": mean + half}


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


def paired_test(diffs) -> dict:
    """Paired t-test of differences (b - a per seed) against 0: mean, 95% CI, t and two-sided p."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    ci = t_interval(d)
    if len(d) < 2:
        t = p = math.nan
    elif ci["std"] == 0:  # every seed moved by exactly the same amount: no variance to test against
        t = math.copysign(math.inf, ci["mean"]) if ci["mean"] else math.nan
        p = 0.0 if ci["mean"] else 1.0
    else:
        res = stats.ttest_1samp(d, 0.0)  # == ttest_rel(b, a) on the pairs
        t, p = float(res.statistic), float(res.pvalue)
    return {"n_pairs": ci["n"], "mean_diff": ci["mean"], "std_diff": ci["std"], "ci_low": ci["ci_low"],
            "ci_high": ci["ci_high"], "t": t, "p_value": p}


def _check_columns(df: pd.DataFrame, needed, where: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: the summary table lacks column(s) {', '.join(missing)}")


def accuracy_table(summary: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    """Long table: one row per (dataset, model, activation, metric) with t-interval statistics.

    Diverged runs enter with their (NaN) accuracy dropped; `n_runs` and `n_diverged` say how many.
    """
    _check_columns(summary, [*GROUP, "seed", "test_acc"], "accuracy")
    rows = []
    for key, g in summary.groupby(GROUP, sort=True):
        diverged = int(g["diverged"].astype(bool).sum()) if "diverged" in g else 0
        for metric in metrics:
            if metric not in g or g[metric].isna().all():
                continue
            rows.append({**dict(zip(GROUP, key)), "metric": metric, "n_runs": len(g), "n_diverged": diverged,
                         **t_interval(g[metric]), "confidence": CONFIDENCE, "interval": "student-t"})
    return pd.DataFrame(rows)


def vs_baseline(summary: pd.DataFrame, baseline: str = "relu", metric: str = "test_acc") -> pd.DataFrame:
    """Paired-by-seed difference (activation - baseline) per (dataset, model, activation), with the
    paired t-test p-value and the Holm-corrected p-value within each (dataset, model) family."""
    _check_columns(summary, [*GROUP, "seed", metric], "vs_baseline")
    rows = []
    for (dataset, model), g in summary.groupby(["dataset", "model"], sort=True):
        base = g[g["activation"] == baseline].set_index("seed")[metric]
        if base.empty:
            raise ValueError(f"no {baseline!r} runs for {dataset}/{model}: nothing to pair with")
        if base.index.duplicated().any():
            raise ValueError(f"{dataset}/{model}/{baseline}: duplicate seeds {sorted(base.index[base.index.duplicated()])}")
        for act, a in g[g["activation"] != baseline].groupby("activation", sort=True):
            a = a.set_index("seed")[metric]
            paired = pd.concat({"a": a, "b": base}, axis=1, join="inner").dropna()
            rows.append({"dataset": dataset, "model": model, "activation": act, "baseline": baseline,
                         "metric": metric, "mean": float(a.mean()), "baseline_mean": float(base.mean()),
                         **paired_test(paired["a"] - paired["b"])})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = np.nan
    out["family_size"] = 0
    for _, idx in out.groupby(["dataset", "model", "metric"]).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p_value"])
        out.loc[idx, "family_size"] = int(out.loc[idx, "p_value"].notna().sum())
    out["significant_05"] = out["p_holm"] <= 0.05
    out["test"] = "paired t-test (two-sided), Holm per dataset/model"
    return out


def compute_table(summary: pd.DataFrame, baseline: str = "relu") -> pd.DataFrame:
    """Seconds per epoch per (dataset, model, activation): t-interval and the ratio to the baseline."""
    _check_columns(summary, [*GROUP, "seconds_per_epoch"], "compute")
    rows = []
    for key, g in summary.groupby(GROUP, sort=True):
        row = {**dict(zip(GROUP, key)), **t_interval(g["seconds_per_epoch"])}
        if "device" in g:
            row["device"] = ",".join(sorted(set(map(str, g["device"]))))
        rows.append(row)
    out = pd.DataFrame(rows).rename(columns={"mean": "seconds_per_epoch"})
    base = out[out["activation"] == baseline].set_index(["dataset", "model"])["seconds_per_epoch"]
    out["ratio_to_" + baseline] = [row.seconds_per_epoch / base.get((row.dataset, row.model), math.nan)
                                   for row in out.itertuples()]
    return out


def read_summary(path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def write_all(summary: pd.DataFrame, out_dir, baseline: str = "relu") -> dict[str, Path]:
    from actlab import atomic

    out_dir = Path(out_dir)
    tables = {"accuracy": accuracy_table(summary), "vs_relu": vs_baseline(summary, baseline),
              "compute": compute_table(summary, baseline)}
    paths = {}
    for name, df in tables.items():
        paths[name] = out_dir / f"{name}.csv"
        atomic.write_csv(paths[name], df)
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m actlab.stats", description=__doc__.split("\n")[0])
    p.add_argument("--summary", type=Path, default=Path("results/summary.parquet"),
                   help="one row per run (parquet or csv), from actlab.aggregate")
    p.add_argument("--out-dir", type=Path, default=Path("results/stats"))
    p.add_argument("--baseline", default="relu", help="activation every other one is paired with")
    args = p.parse_args(argv)
    try:
        summary = read_summary(args.summary)
        paths = write_all(summary, args.out_dir, args.baseline)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
