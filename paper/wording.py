"""How the article words numbers and comparisons: number formats (percentages, percentage points,
intervals, p-values, durations) and the rules that choose between "separated" and "cannot be
separated", "close" and "different" for a paired comparison (bookdata.py explains the rules and
re-exports all of this: the pages call bd.pct, bd.Comparison, ...). Reads no results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from actlab import activations
from actlab.stats import ALPHA, EQUIVALENCE_MARGIN

CLOSE_MARGIN = EQUIVALENCE_MARGIN  # 1 percentage point of accuracy; its reason beside it in actlab.stats

# How the article names things: one table for the article and the figures (actlab.names).
PRETTY = {n: activations.spec(n).display for n in activations.NAMES}


def name(activation: str) -> str:
    return PRETTY.get(activation, activation)


# -----------------------------------------------------------------------------
# numbers as the article prints them


MINUS = "\u2212"  # typographic minus sign


def _num(v: float, nd: int, sign: bool) -> str:
    if round(v, nd) == 0:
        v = 0.0  # never "-0.0"
    return (f"{v:+.{nd}f}" if sign else f"{v:.{nd}f}").replace("-", MINUS)


def pct(x: float, nd: int = 1, unit: bool = True) -> str:
    """0.9641 -> '96.4%'."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return _num(100 * x, nd, False) + ("%" if unit else "")


def pp(x: float, nd: int = 1, sign: bool = True, unit: bool = True) -> str:
    """A difference of fractions in percentage points: 0.0123 -> '+1.2 pp'."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return _num(100 * x, nd, sign) + (" pp" if unit else "")


def clip01(x: float) -> float:
    """A t-interval bound of a fraction, clipped to [0, 1] for display."""
    return x if not np.isfinite(x) else min(1.0, max(0.0, x))


def ci(lo: float, hi: float, fmt=pct) -> str:
    """'95% CI 95.8% to 97.0%' (or 'no CI (one seed)' when it cannot be computed)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no CI: fewer than two seeds"
    return f"95% CI {fmt(lo)} to {fmt(hi)}"


def pvalue(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def seconds(s: float) -> str:
    """A duration for prose: '0.8 s', '42 s', '3.2 min', '1.5 h'."""
    if not np.isfinite(s):
        return "n/a"
    if s < 10:
        return f"{s:.2g} s" if s < 1 else f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def ms(s: float) -> str:
    return "n/a" if not np.isfinite(s) else f"{1000 * s:.1f} ms"


def join(items, last: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def ratio(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.2f}×"


# -----------------------------------------------------------------------------
# verdict rules


@dataclass(frozen=True)
class Comparison:
    """The paired difference a - b (a, b activation names) over seeds."""

    a: str
    b: str
    n: int
    diff: float
    ci_low: float
    ci_high: float
    p_holm: float
    p_tost: float = math.nan  # TOST equivalence p within +-CLOSE_MARGIN (not corrected)

    @property
    def outcome(self) -> str:
        return separation(self.diff, self.p_holm)

    def text(self, fmt=pp) -> str:
        """'GELU - ReLU = +0.3 pp (95% CI -0.5 pp to +1.1 pp, Holm p = 0.412, 5 seeds)'."""
        return (
            f"{name(self.a)} − {name(self.b)} = {fmt(self.diff)} "
            f"({ci(self.ci_low, self.ci_high, fmt)}, Holm {pvalue(self.p_holm)}, {self.n} seeds)"
        )


def separation(diff: float, p_holm: float, alpha: float = ALPHA) -> str:
    """'higher' / 'lower' when the Holm-corrected p-value is below alpha, else 'inseparable'."""
    if p_holm is None or not np.isfinite(p_holm) or not np.isfinite(diff) or p_holm >= alpha or diff == 0:
        return "inseparable"
    return "higher" if diff > 0 else "lower"


def close(c: Comparison, margin: float = CLOSE_MARGIN, alpha: float = ALPHA) -> str:
    """'close' when the TOST equivalence test within +-margin rejects (p_tost < alpha), whatever the
    difference test says (a small, consistent difference inside the margin is still close);
    'different' when the two are separated *and* the whole 95% CI of the difference lies outside
    +-margin; otherwise 'unresolved' (neither equivalence nor a difference beyond the margin shown)."""
    if np.isfinite(c.p_tost) and c.p_tost < alpha:
        return "close"
    outside = np.isfinite(c.ci_low) and np.isfinite(c.ci_high) and (c.ci_low > margin or c.ci_high < -margin)
    if c.outcome != "inseparable" and outside:
        return "different"
    return "unresolved"


def paired_comparisons(df: pd.DataFrame, ref: str, others, metric: str = "test_acc") -> list[Comparison]:
    """Paired-by-seed differences (other - ref): actlab.stats' exact sign-flip test, Holm over
    `others`, and TOST within CLOSE_MARGIN."""
    from actlab import stats

    base = df[df["activation"] == ref].set_index("seed")[metric]
    rows = []
    for o in others:
        a = df[df["activation"] == o].set_index("seed")[metric]
        paired = pd.concat({"a": a, "b": base}, axis=1, join="inner").dropna()
        rows.append((o, stats.paired_test(paired["a"] - paired["b"])))
    adj = stats.holm([r["p_value"] for _, r in rows]) if rows else []
    return [
        Comparison(o, ref, r["n_pairs"], r["mean_diff"], r["ci_low"], r["ci_high"], float(p), r["p_tost"])
        for (o, r), p in zip(rows, adj)
    ]
