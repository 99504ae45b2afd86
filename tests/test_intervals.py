"""The binomial confidence intervals (actlab.intervals): Wilson's for a proportion, the order-statistic
interval of a median."""

from __future__ import annotations

import math

import pytest

from actlab import intervals

# -----------------------------------------------------------------------------
# the Wilson score interval


def test_wilson_interval():
    assert intervals.wilson(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-5))
    lo, hi = intervals.wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.23659, abs=1e-5), pytest.approx(0.76341, abs=1e-5))
    assert intervals.wilson(10, 10)[1] == 1.0


# -----------------------------------------------------------------------------
# the confidence interval of the median


def test_median_ci_on_a_known_sample():
    # n = 15: the 95% order-statistic interval is [x_(4), x_(12)], coverage 1 - 2 P(B <= 3) = 0.9648
    assert intervals.median_ci(range(1, 16)) == (8.0, 4.0, 12.0)
    assert intervals.median_ci_ranks(15) == (4, 12, pytest.approx(1 - 2 * 576 / 2**15))
    # order does not matter, NaNs are dropped
    x = [9, 1, 14, 3, 12, 2, 15, 4, 8, 11, 5, 13, 7, 10, 6, math.nan]
    assert intervals.median_ci(x) == (8.0, 4.0, 12.0)
    # n = 10 -> [x_(2), x_(9)]; n = 6 -> [min, max] (coverage 1 - 2/64); n <= 5 -> no 95% interval
    assert intervals.median_ci([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]) == (55.0, 20.0, 90.0)
    assert intervals.median_ci_ranks(6) == (1, 6, pytest.approx(0.96875))
    med, lo, hi = intervals.median_ci([1, 2, 3, 4, 5])
    assert med == 3 and math.isnan(lo) and math.isnan(hi)


def test_median_ci_ranks_match_the_binomial_distribution():
    from scipy import stats

    for n in range(6, 60):
        lo, hi, cov = intervals.median_ci_ranks(n)
        assert hi == n + 1 - lo
        assert cov == pytest.approx(1 - 2 * stats.binom.cdf(lo - 1, n, 0.5))
        assert cov >= 0.95 and 1 - 2 * stats.binom.cdf(lo, n, 0.5) < 0.95  # the narrowest such interval
