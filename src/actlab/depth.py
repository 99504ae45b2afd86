"""Depth study: born-dead probability and collapse of deep, narrow MLPs on a 1-D input
(Lu, Shin, Su & Karniadakis, "Dying ReLU and Initialization: Theory and Numerical Examples",
Commun. Comput. Phys. 28(5), 2020; arXiv:1903.06733).

    python -m actlab.depth --out-dir results/depth [--trials 1000] [--activations relu,leaky_relu]
        [--inits he,rai] [--widths 1,2,3,5,10] [--depths 2,5,10,20,50] [--collapse/--no-collapse] [--quick]

Network: x (scalar) -> [Linear(width) -> f] x depth -> Linear(1); ``depth`` = number of hidden
layers (as ``model.depth`` in actlab.models). Inputs live on D = [-sqrt(3), sqrt(3)] (mean 0,
variance 1 under the uniform law, i.e. standardised data).

Inits (one trial = one independent draw of every parameter):
  he   W ~ N(0, 2 / ((1 + a^2) fan_in)) (a = the activation's negative slope), biases 0: exactly
       actlab.activations.init_weights("kaiming"), i.e. what actlab's models use.
  rai  randomized asymmetric init (Lu et al.): per neuron, its fan_in weights and its bias are drawn
       N(0, 1) * 0.6007 / sqrt(fan_in), then one of these fan_in + 1 parameters, chosen uniformly,
       is replaced by a Beta(2, 1) draw (sampled as sqrt(U), U ~ U(0, 1): its CDF is x^2). Applied to
       every layer, the output layer included (the output layer cannot make a net constant).

Born dead := the network is a constant function on D at initialisation. Decided exactly as follows:
forward-mode differentiation (value h and tangent t = dh/dx propagated together, t <- f'(z) * W t)
gives df/dx at a set of test points of D, and the net is called constant iff df/dx == 0 *exactly*
(float64) at every test point. Why exact zero and not a tolerance: for ReLU, df/dx = W_out D_L W_L
... D_1 W_1 with 0/1 masks D_l; a layer with every unit off at x gives a zero vector that stays
exactly zero through the remaining products, while a live path gives a nonzero product except on a
null set of weights. f'(z) is closed-form for relu / leaky_relu / prelu (torch's conventions: ReLU's
subgradient at 0 is 0) and autograd on the activation module for every other activation. For
activations whose derivative never vanishes (leaky_relu, prelu with a != 0) df/dx is nonzero except
on a null set, and the estimate is exactly 0. The test points:
  * He init with relu / leaky_relu / prelu: biases are 0 and f is positively homogeneous, so
    f(x) = x f(1) for x >= 0 and |x| f(-1) for x < 0: "constant on D" <=> df/dx(+-sqrt(3)) = 0. The
    two ends of D are the test points and the test is exact, not a grid approximation.
  * otherwise (RAI: non-zero biases; non-homogeneous activations): a uniform grid of ``grid`` points
    on D (ends included). A ReLU net is then piecewise linear in x, and the test can only miss a
    non-constant piece lying strictly between two grid points (width < |D| / (grid - 1)).
  For ReLU, df/dx(x) == 0 means some layer has every unit off at x, not necessarily the same layer
  at every x: with biases a net can be constant without one layer being dead on all of D, which is
  why the test is on df/dx and not on a single all-dead layer.
  Speed (the default grid runs in seconds): all trials of a cell are one batched forward-mode pass
  (weights (trials, width, width), bmm); a net whose tangent is exactly zero at every point after
  some layer is settled and leaves the batch; on a grid, nets are first tested at 9 of its points
  (a nonzero df/dx there already proves them non-constant) and only the rest at every point.

Theory (ReLU, He init, bias-free; derived here for i.i.d. symmetric Gaussian weights, both consistent
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
Wilson 95% score intervals (z = 1.959964) for every estimated probability.

Collapse after training: for a few (width, depth) cells, ``seeds`` independent nets per init
(vectorised: one batched parameter tensor per layer, all inits in one batch) are trained in float32
by full-batch Adam on y = |x| at ``train_points`` uniform points of D (MSE), and the nets that end as
a constant function (the same exact test, in float64, on the ``grid`` points) are counted, with how
many of them were born dead (Lu et al.: a born-dead net is trained to a constant by any gradient
method) and the median final loss (``constant_fit_loss`` = the MSE of the best constant, Var|x|).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from actlab import activations, atomic

DOMAIN = math.sqrt(3.0)  # D = [-sqrt(3), sqrt(3)]: uniform inputs with variance 1
Z95 = 1.959963984540054
INITS = ("he", "rai")
RAI_SCALE = 0.6007  # Lu et al.'s sigma * sqrt(fan_in)

BORN_DEAD_COLUMNS = ["activation", "init", "depth", "width", "trials", "born_dead", "p_born_dead", "ci_low",
                     "ci_high", "theory_exact", "theory_low", "theory_high", "grid_points"]
COLLAPSE_COLUMNS = ["activation", "init", "depth", "width", "seeds", "steps", "lr", "born_dead", "collapsed",
                    "p_collapsed", "ci_low", "ci_high", "median_final_loss", "constant_fit_loss", "train_points",
                    "grid_points"]

Params = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: W (T, out, in), b (T, out, 1)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # exact ends for k = 0 and k = n (the formula gives them up to rounding)
    return (0.0 if k == 0 else centre - half), (1.0 if k == n else centre + half)


def cell_generator(seed: int, *key) -> torch.Generator:
    """A generator seeded from (seed, cell): every cell is reproducible on its own."""
    return torch.Generator().manual_seed(zlib.crc32(repr((seed, *key)).encode()))


def init_params(init: str, activation: str, width: int, depth: int, trials: int, gen: torch.Generator,
                dtype=torch.float64) -> Params:
    """`trials` independent draws of a 1 -> width^depth -> 1 MLP's parameters."""
    sizes = [1] + [width] * depth + [1]
    slope = activations.spec(activation).negative_slope({})
    params: Params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        if init == "he":
            std = math.sqrt(2.0 / ((1.0 + slope**2) * fan_in))
            w = torch.randn(trials, fan_out, fan_in, generator=gen, dtype=dtype) * std
            b = torch.zeros(trials, fan_out, 1, dtype=dtype)
        elif init == "rai":
            v = torch.randn(trials, fan_out, fan_in + 1, generator=gen, dtype=dtype) * (RAI_SCALE / math.sqrt(fan_in))
            pick = torch.randint(0, fan_in + 1, (trials, fan_out, 1), generator=gen)
            beta21 = torch.rand(trials, fan_out, 1, generator=gen, dtype=dtype).sqrt()  # Beta(2, 1)
            v.scatter_(2, pick, beta21)
            w, b = v[..., :fan_in].contiguous(), v[..., fan_in:].contiguous()
        else:
            raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
        params.append((w, b))
    return params


def grid(points: int, dtype=torch.float64) -> torch.Tensor:
    return torch.linspace(-DOMAIN, DOMAIN, points, dtype=dtype)


def _apply(act: nn.Module, zt: torch.Tensor, out: torch.Tensor) -> None:
    """One activation layer in forward mode: zt = [z | dz] (T, width, 2G) -> out = [f(z) | f'(z) dz].

    f' in closed form for the rectifiers (the hot path; the same values as torch's autograd: ReLU's
    subgradient at 0 is 0, the leaky ones take the slope a at 0), by autograd on the activation
    module for every other activation. `out` may be a view into a preallocated buffer."""
    g = zt.shape[2] // 2
    z, dz = zt[..., :g], zt[..., g:]
    if type(act) is nn.ReLU:
        slope = z > 0
    elif type(act) in (nn.LeakyReLU, nn.PReLU):
        a = act.negative_slope if type(act) is nn.LeakyReLU else act.weight.detach().view(1, -1, 1).to(z.dtype)
        slope = torch.where(z > 0, torch.ones((), dtype=z.dtype), a * torch.ones((), dtype=z.dtype))
    else:
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            h = act(zz)
            (slope,) = torch.autograd.grad(h.sum(), zz)  # elementwise f: d[i] = f'(z[i])
        out[..., :g] = h.detach()
        torch.mul(dz, slope, out=out[..., g:])
        return
    torch.mul(z, slope, out=out[..., :g])
    torch.mul(dz, slope, out=out[..., g:])


def _augment(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[W | b] (T, out, in + 1): the bias rides along as a weight on a constant input row."""
    return torch.cat([w, b], dim=2)


def _input(x: torch.Tensor, trials: int, width: int, dtype) -> torch.Tensor:
    """The forward-mode state (T, width + 1, 2G): rows = units (+ a constant row for the bias),
    columns = values at the G points | tangents d/dx there. Starts as the input x with tangent 1."""
    g = len(x)
    ht = torch.zeros(trials, width + 1, 2 * g, dtype=dtype)
    ht[:, 0, :g] = x.to(dtype)
    ht[:, 0, g:] = 1.0
    ht[:, width, :g] = 1.0  # bias row: value 1, tangent 0
    return ht


@torch.no_grad()
def value_and_derivative(params: Params, act: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and df/dx, both (T, G), for T nets at the G points x, by forward-mode differentiation."""
    t_count, g, dtype = params[0][0].shape[0], len(x), params[0][0].dtype
    ht = _input(x, t_count, 1, dtype)
    for i, (w, b) in enumerate(params[:-1]):
        zt = torch.bmm(_augment(w, b), ht)  # (T, width, 2G) = [W h + b | W t]
        if i == 0:
            ht = _input(x, t_count, w.shape[1], dtype)  # width-sized state from here on
        _apply(act, zt, ht[:, :-1])
    zt = torch.bmm(_augment(*params[-1]), ht)
    return zt[:, 0, :g], zt[:, 0, g:]


@torch.no_grad()
def constant_on_grid(params: Params, act: nn.Module, x: torch.Tensor, coarse: int = 9) -> torch.Tensor:
    """(T,) bool: df/dx == 0 exactly at every point of x.

    Two stages with the same answer as one pass over all of x: a nonzero df/dx at any of `coarse`
    points spread over x (a subset of x) already proves a net non-constant; only the nets with
    df/dx == 0 at all of them are tested on every point of x."""
    if len(x) <= 2 * coarse:
        return _constant_at(params, act, x)
    maybe = _constant_at(params, act, x[torch.linspace(0, len(x) - 1, coarse).round().long()])
    out = torch.zeros_like(maybe)
    if maybe.any():
        out[maybe] = _constant_at([(w[maybe], b[maybe]) for w, b in params], act, x)
    return out


def _constant_at(params: Params, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(T,) bool: df/dx == 0 exactly at every point of x, in one forward-mode pass.

    Same pass as `value_and_derivative`, but a net whose tangent is exactly zero at every point
    after some layer is settled (zero stays zero through W and f') and leaves the batch: deep
    ReLU nets mostly die early, so the deep cells cost little."""
    t_count, g, dtype = params[0][0].shape[0], len(x), params[0][0].dtype
    dead = torch.zeros(t_count, dtype=torch.bool)
    alive = torch.arange(t_count)  # the nets still in the batch
    ht = _input(x, t_count, 1, dtype)
    for i, (w, b) in enumerate(params):
        wb = _augment(w, b) if len(alive) == t_count else _augment(w[alive], b[alive])
        zt = torch.bmm(wb, ht)
        if i == len(params) - 1:
            dead[alive] = torch.count_nonzero(zt[:, 0, g:], dim=1) == 0
            return dead
        if i == 0:
            ht = _input(x, t_count, w.shape[1], dtype)
        _apply(act, zt, ht[:, :-1])
        zero = torch.count_nonzero(ht[:, :-1, g:], dim=(1, 2)) == 0  # (T_alive,)
        if zero.any():
            dead[alive[zero]] = True
            alive, ht = alive[~zero], ht[~zero]
            if len(alive) == 0:
                return dead
    raise AssertionError("unreachable")


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


def born_dead_cell(activation: str, init: str, width: int, depth: int, trials: int, points: int,
                   seed: int) -> dict:
    """Estimate P(born dead) for one (activation, init, width, depth) cell."""
    gen = cell_generator(seed, "born_dead", activation, init, width, depth)
    params = init_params(init, activation, width, depth, trials, gen)
    act = activations.build(activation, num_features=width).to(torch.float64)
    x = test_points(activation, init, points)
    k = int(constant_on_grid(params, act, x).sum())
    lo, hi = wilson(k, trials)
    exact, t_lo, t_hi = born_dead_theory(activation, init, width, depth)
    return {"activation": activation, "init": init, "depth": depth, "width": width, "trials": trials,
            "born_dead": k, "p_born_dead": k / trials, "ci_low": lo, "ci_high": hi, "theory_exact": exact,
            "theory_low": t_lo, "theory_high": t_hi, "grid_points": len(x)}


def collapse_cells(activation: str, inits: list[str], width: int, depth: int, seeds: int, steps: int, lr: float,
                   points: int, seed: int, train_points: int = 65) -> list[dict]:
    """Train `seeds` nets per init on y = |x| at `train_points` uniform points of D, all inits and
    seeds in one float32 batch (full-batch Adam, MSE); count the nets ending constant (the exact
    test, in float64, on the `points` grid). One row per init."""
    act = activations.build(activation, num_features=width)
    if any(True for _ in act.parameters()):
        # a learned activation parameter would be shared by every vectorised seed
        raise ValueError(f"collapse study needs a parameter-free activation, got {activation!r}")
    # Each init's draw is the same as if it were trained alone (its own cell generator).
    draws = [init_params(init, activation, width, depth, seeds,
                         cell_generator(seed, "collapse", activation, init, width, depth)) for init in inits]
    params = [(torch.cat([d[i][0] for d in draws]), torch.cat([d[i][1] for d in draws]))
              for i in range(depth + 1)]  # (len(inits) * seeds, ...)
    x = grid(points)
    born_dead = constant_on_grid(params, act, x)
    xt = grid(train_points, torch.float32)
    yt = xt.abs()
    params = [(w.float(), b.float()) for w, b in params]  # float32 training: op overhead and bandwidth
    leaves = [p.requires_grad_(True) for wb in params for p in wb]
    # Adam is elementwise and the summed loss gives each net exactly its own gradient: this is
    # len(inits) * seeds independent Adam runs.
    opt = torch.optim.Adam(leaves, lr=lr, foreach=True)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        per_net = ((forward(params, act, xt) - yt) ** 2).mean(dim=1)  # (S,)
        per_net.sum().backward()
        opt.step()
    with torch.no_grad():
        final = ((forward(params, act, xt) - yt) ** 2).mean(dim=1)
    collapsed = constant_on_grid([(w.detach().double(), b.detach().double()) for w, b in params], act, x)
    rows = []
    for i, init in enumerate(inits):
        sl = slice(i * seeds, (i + 1) * seeds)
        k = int(collapsed[sl].sum())
        lo, hi = wilson(k, seeds)
        rows.append({"activation": activation, "init": init, "depth": depth, "width": width, "seeds": seeds,
                     "steps": steps, "lr": lr, "born_dead": int(born_dead[sl].sum()), "collapsed": k,
                     "p_collapsed": k / seeds, "ci_low": lo, "ci_high": hi,
                     "median_final_loss": float(final[sl].median()),
                     "constant_fit_loss": float(yt.double().var(unbiased=False)), "train_points": train_points,
                     "grid_points": points})
    return rows


def forward(params: Params, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(T, G) outputs of T nets at the points x, differentiable w.r.t. the parameters."""
    h = x.expand(params[0][0].shape[0], 1, len(x))
    for w, b in params[:-1]:
        h = act(torch.baddbmm(b, w, h))
    w, b = params[-1]
    return torch.baddbmm(b, w, h)[:, 0]


# ------------------------------------------------------------------------------------------------
# CLI


class UsageError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the usage too)
        raise UsageError(message)


def _ints(s: str) -> list[int]:
    try:
        vals = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {s!r}")
    return vals


def _names(s: str) -> list[str]:
    return [v.strip() for v in s.split(",") if v.strip()]


def _cells(s: str) -> list[tuple[int, int]]:
    try:
        cells = [tuple(int(p) for p in c.split("x")) for c in _names(s)]
    except ValueError:
        cells = []
    if not cells or any(len(c) != 2 or min(c) < 1 for c in cells):
        raise argparse.ArgumentTypeError(f"expected WIDTHxDEPTH,... (e.g. 2x10,3x10), got {s!r}")
    return cells


QUICK = {"trials": 200, "widths": [1, 2, 3], "depths": [2, 5, 10], "collapse_seeds": 16, "collapse_steps": 100,
         "collapse_cells": [(2, 5)]}


def parse(argv: list[str]) -> argparse.Namespace:
    ap = _Parser(prog="python -m actlab.depth", description="Born-dead probability and collapse of deep narrow MLPs.")
    ap.add_argument("--out-dir", type=Path, default=Path("results/depth"))
    ap.add_argument("--trials", type=int, default=None, help="random inits per born-dead cell (default 1000)")
    ap.add_argument("--activations", type=_names, default=["relu", "leaky_relu"])
    ap.add_argument("--inits", type=_names, default=list(INITS))
    ap.add_argument("--widths", type=_ints, default=None, help="default 1,2,3,5,10")
    ap.add_argument("--depths", type=_ints, default=None, help="hidden layers; default 2,5,10,20,50")
    ap.add_argument("--grid", type=int, default=257, help="grid points on [-sqrt3, sqrt3] (>= 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--collapse", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--collapse-cells", type=_cells, default=None, help="WIDTHxDEPTH list; default 2x5,2x10,3x10")
    ap.add_argument("--collapse-activations", type=_names, default=["relu", "leaky_relu"])
    ap.add_argument("--collapse-seeds", type=int, default=None, help="default 100")
    ap.add_argument("--collapse-steps", type=int, default=None, help="full-batch Adam steps; default 2000")
    ap.add_argument("--collapse-lr", type=float, default=1e-3)
    ap.add_argument("--collapse-points", type=int, default=65, help="training inputs on [-sqrt3, sqrt3] (>= 2)")
    ap.add_argument("--quick", action="store_true", help="small defaults (for tests): " + str(QUICK))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads (default 1: many small ops, which extra threads slow down)")
    a = ap.parse_args(argv)
    defaults = QUICK if a.quick else {"trials": 1000, "widths": [1, 2, 3, 5, 10], "depths": [2, 5, 10, 20, 50],
                                      "collapse_seeds": 100, "collapse_steps": 2000,
                                      "collapse_cells": [(2, 5), (2, 10), (3, 10)]}
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    for name in (*a.activations, *a.collapse_activations):
        activations.spec(name)  # UnknownActivation names the valid ones
    for name in a.collapse_activations:
        if any(True for _ in activations.build(name, num_features=2).parameters()):
            raise UsageError(f"--collapse-activations: {name!r} has learned parameters, which the vectorised "
                             f"seeds would share; use a parameter-free activation")
    for init in a.inits:
        if init not in INITS:
            raise UsageError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    checks = [(a.trials >= 1, f"--trials must be >= 1, got {a.trials}"),
              (a.grid >= 2, f"--grid must be >= 2, got {a.grid}"),
              (a.collapse_seeds >= 1, f"--collapse-seeds must be >= 1, got {a.collapse_seeds}"),
              (a.collapse_steps >= 0, f"--collapse-steps must be >= 0, got {a.collapse_steps}"),
              (a.collapse_lr > 0 and math.isfinite(a.collapse_lr), f"--collapse-lr must be > 0, got {a.collapse_lr}"),
              (a.collapse_points >= 2, f"--collapse-points must be >= 2, got {a.collapse_points}"),
              (a.threads >= 1, f"--threads must be >= 1, got {a.threads}"),
              (bool(a.activations) and bool(a.inits), "--activations and --inits must not be empty")]
    for ok, msg in checks:
        if not ok:
            raise UsageError(msg)
    for key in ("activations", "inits", "widths", "depths", "collapse_activations", "collapse_cells"):
        setattr(a, key, list(dict.fromkeys(getattr(a, key))))  # drop repeats, keep the order
    try:  # fail before the computation, not after it
        a.out_dir.mkdir(parents=True, exist_ok=True)
        probe = a.out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--out-dir {str(a.out_dir)!r} is not writable: {e.strerror}") from None
    return a


def run(a: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Compute the tables and write them atomically into a.out_dir."""
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    rows = [born_dead_cell(act, init, w, d, a.trials, a.grid, a.seed)
            for act in a.activations for init in a.inits for w in a.widths for d in a.depths]
    born = pd.DataFrame(rows, columns=BORN_DEAD_COLUMNS)
    atomic.write_csv(a.out_dir / "born_dead.csv", born)
    t1 = time.perf_counter()
    print(f"born_dead.csv: {len(born)} cells x {a.trials} trials in {t1 - t0:.1f}s", flush=True)
    collapse = None
    if a.collapse:
        rows = [row for act in a.collapse_activations for w, d in a.collapse_cells
                for row in collapse_cells(act, a.inits, w, d, a.collapse_seeds, a.collapse_steps, a.collapse_lr,
                                          a.grid, a.seed, a.collapse_points)]
        collapse = pd.DataFrame(rows, columns=COLLAPSE_COLUMNS)
        atomic.write_csv(a.out_dir / "collapse.csv", collapse)
        print(f"collapse.csv: {len(collapse)} cells x {a.collapse_seeds} seeds x {a.collapse_steps} steps "
              f"in {time.perf_counter() - t1:.1f}s", flush=True)
    return born, collapse


def main(argv: list[str] | None = None) -> None:
    try:
        run(parse(sys.argv[1:] if argv is None else argv))
    except (UsageError, activations.UnknownActivation) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
