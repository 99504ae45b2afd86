"""Binomial confidence intervals for the analysis: the Wilson score interval of a proportion (the
depth study's born-dead and collapse probabilities, actlab.borndead / actlab.collapse) and the
distribution-free order-statistic interval of a median (the controlled timing, actlab.epochtimes).

Order-statistic interval of the median of n i.i.d. values: [x_(l), x_(n+1-l)] with the largest l such
that 2 P(B <= l - 1) <= 1 - confidence, B ~ Binomial(n, 1/2) (coverage >= confidence, exact under any
continuous distribution; n >= 6 needed for 95%).
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054
CONFIDENCE = 0.95


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # exact ends for k = 0 and k = n (the formula gives them up to rounding)
    return (0.0 if k == 0 else centre - half), (1.0 if k == n else centre + half)


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float] | None:
    """1-based ranks (l, u = n + 1 - l) of the order-statistic interval of the median and its exact
    coverage 1 - 2 P(B <= l - 1), B ~ Binomial(n, 1/2); None when even [min, max] covers less than
    `confidence` (n <= 5 for 95%)."""
    alpha = 1 - confidence
    best, cdf, term = None, 0.0, 0.5**n  # term = P(B = k)
    for l in range(1, n // 2 + 1):  # noqa: E741
        cdf += term  # P(B <= l - 1)
        if 2 * cdf > alpha + 1e-12:
            break
        best = (l, n + 1 - l, 1 - 2 * cdf)
        term = term * (n - (l - 1)) / l  # P(B = l)
    return best


def median_ci(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(median, ci_low, ci_high): the order-statistic interval of `median_ci_ranks` (NaN bounds when
    there are too few values for it). NaNs are dropped first."""
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    if not len(x):
        return math.nan, math.nan, math.nan
    ranks = median_ci_ranks(len(x), confidence)
    med = float(np.median(x))
    if ranks is None:
        return med, math.nan, math.nan
    lo, hi, _ = ranks
    return med, float(x[lo - 1]), float(x[hi - 1])
