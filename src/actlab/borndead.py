"""Born dead: the probability that a freshly initialised deep narrow MLP (actlab.depthnets) is a
constant function on D, estimated per (activation, init, width, depth) cell, and derived for ReLU
under He init: the rows of born_dead.csv (``python -m actlab.depth``; Lu, Shin, Su & Karniadakis,
"Dying ReLU and Initialization: Theory and Numerical Examples", Commun. Comput. Phys. 28(5), 2020).

Born dead := the network is a constant function on D at initialisation, decided exactly by
`actlab.depthnets.constant_on_grid` (df/dx == 0 exactly, in float64, at every test point). The
test points (`test_points`):
  * He init with relu / leaky_relu / prelu: biases are 0 and f is positively homogeneous, so
    f(x) = x f(1) for x >= 0 and |x| f(-1) for x < 0: "constant on D" <=> df/dx(+-sqrt(3)) = 0. The
    two ends of D are the test points and the test is exact, not a grid approximation.
  * otherwise (RAI: non-zero biases; non-homogeneous activations): a uniform grid of ``grid`` points
    on D (ends included). A ReLU net is then piecewise linear in x, and the test can only miss a
    non-constant piece lying strictly between two grid points (width < |D| / (grid - 1)).
  For ReLU, df/dx(x) == 0 means some layer has every unit off at x, not necessarily the same layer
  at every x: with biases a net can be constant without one layer being dead on all of D, which is
  why the test is on df/dx and not on a single all-dead layer.

Theory (ReLU, He init, bias-free; derived here, in full in paper/appendix.md, for i.i.d. Gaussian weights; consistent
with Lu et al.'s theorems: P -> 1 as depth -> inf at fixed width, P -> 0 as width -> inf at fixed
depth). With w = width, L = depth:
  theory_high = 1 - (1 - 2^-w)^L: born dead needs the signal of x = +1 to die; a non-zero input
      vector v makes each of the w units of the next layer fire independently with probability 1/2,
      so the signal survives each of the L layers with probability 1 - 2^-w.
  theory_low = 1 - (1 - 4^-w)^(L-1): in every layer l >= 2, both signals (x = +1 and x = -1, two
      non-negative vectors at an angle theta <= pi/2) die together with probability
      prod_i (pi - theta) / (2 pi) >= 4^-w, whatever happened before.
  theory_exact (width 1 only) = 1 - 2^-(L-1): layer 1 passes exactly one of x = +-1, each later layer
      passes it iff its single weight is positive.
Wilson 95% score intervals (actlab.intervals.wilson, z = 1.959964) for every estimated probability.
"""

from __future__ import annotations

import math

import torch

from actlab import activations
from actlab.depthnets import DOMAIN, cell_generator, constant_on_grid, grid, init_params
from actlab.intervals import wilson

BORN_DEAD_COLUMNS = [
    "activation",
    "role",
    "init",
    "depth",
    "width",
    "trials",
    "born_dead",
    "p_born_dead",
    "ci_low",
    "ci_high",
    "theory_exact",
    "theory_low",
    "theory_high",
    "grid_points",
]


def test_points(activation: str, init: str, points: int) -> torch.Tensor:
    """Where df/dx is tested: the two ends of D for a bias-free net of a positively homogeneous
    activation (He init, `Spec.homogeneous`: relu, leaky_relu, prelu; then f(x) = x f(1) for x >= 0 and
    |x| f(-1) for x < 0, so this is exact), otherwise `points` uniform grid points on D."""
    if init == "he" and activations.spec(activation).homogeneous:
        return torch.tensor([-DOMAIN, DOMAIN], dtype=torch.float64)
    return grid(points)


def born_dead_theory(activation: str, init: str, width: int, depth: int) -> tuple[float, float, float]:
    """(exact, low, high) for bias-free ReLU nets under He init (see the module docstring); NaN elsewhere."""
    nan = math.nan
    if activation != "relu" or init != "he":
        return nan, nan, nan
    exact = 1 - 2.0 ** -(depth - 1) if width == 1 else nan
    return exact, 1 - (1 - 4.0**-width) ** (depth - 1), 1 - (1 - 2.0**-width) ** depth


def born_dead_cell(activation: str, init: str, width: int, depth: int, trials: int, points: int, seed: int) -> dict:
    """Estimate P(born dead) for one (activation, init, width, depth) cell."""
    gen = cell_generator(seed, "born_dead", activation, init, width, depth)
    params = init_params(init, activation, width, depth, trials, gen)
    act = activations.build(activation, num_features=width).to(torch.float64)
    x = test_points(activation, init, points)
    k = int(constant_on_grid(params, act, x).sum())
    lo, hi = wilson(k, trials)
    exact, t_lo, t_hi = born_dead_theory(activation, init, width, depth)
    return {
        "activation": activation,
        "init": init,
        "depth": depth,
        "width": width,
        "trials": trials,
        "born_dead": k,
        "p_born_dead": k / trials,
        "ci_low": lo,
        "ci_high": hi,
        "theory_exact": exact,
        "theory_low": t_lo,
        "theory_high": t_hi,
        "grid_points": len(x),
    }
