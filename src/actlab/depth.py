"""Depth study: born-dead probability and collapse of deep, narrow MLPs on a 1-D input
(Lu, Shin, Su & Karniadakis, "Dying ReLU and Initialization: Theory and Numerical Examples",
Commun. Comput. Phys. 28(5), 2020; arXiv:1903.06733).

    python -m actlab.depth --out-dir results/depth [--trials 10000] [--activations relu]
        [--controls leaky_relu] [--control-trials 1000] [--inits he,rai] [--widths 1,2,3,5,10]
        [--depths 2,5,10,20,50] [--collapse/--no-collapse] [--collapse-cells 2x10,3x10]
        [--collapse-min-steps 2000] [--collapse-max-steps 5000] [--quick]

Outputs: born_dead.csv (one row per activation, init, width, depth; `role` = study or control),
collapse.csv (one row per collapse cell and init) and collapse_nets.csv (one row per trained net).
Controls are activations whose derivative never vanishes (leaky_relu, elu, gelu, ...): they can
never be born dead, and run with fewer trials as a check of the test itself.

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
  Speed: all trials of a cell are one batched forward-mode pass (weights (trials, width, width),
  bmm); a net whose tangent is exactly zero at every point after some layer is settled and leaves
  the batch; on a grid, nets are first tested at 9 of its points (a nonzero df/dx there already
  proves them non-constant) and the still-constant ones on the other points in chunks of 64, each
  chunk only on the nets still constant (the same answer as one pass, 2-3x less CPU on RAI cells).

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
Wilson 95% score intervals (z = 1.959964) for every estimated probability.

Collapse after training: for a few (width, depth) cells, ``seeds`` independent nets per init
(vectorised: one batched parameter tensor per layer, all inits in one batch) are trained in float32
by full-batch Adam on y = |x| at ``train_points`` uniform points of D (MSE) to a plateau: at least
``min_steps`` steps, then stopping at the first multiple of ``window`` at which every net's best
loss improved by less than ``tol`` (relative) over the last ``window`` steps, or at ``max_steps``.
The nets that end as a constant function (the same exact test, in float64, on the ``grid`` points)
are counted, and per net it is recorded whether it was born dead, whether it had a dead layer (one
outputting 0 at every grid point: Lu et al.'s mechanism, which keeps it constant under any gradient
method), whether it ended constant and its final loss; the summary gives the median final loss of
the collapsed nets and of the others beside ``constant_fit_loss`` = the MSE of the best constant,
Var(y) on the training points.
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
from actlab.intervals import wilson

DOMAIN = math.sqrt(3.0)  # D = [-sqrt(3), sqrt(3)]: uniform inputs with variance 1
INITS = ("he", "rai")
RAI_SCALE = 0.6007  # Lu et al.'s sigma * sqrt(fan_in)

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
COLLAPSE_COLUMNS = [
    "activation",
    "init",
    "depth",
    "width",
    "seeds",
    "steps",
    "min_steps",
    "max_steps",
    "plateau_window",
    "plateau_tol",
    "lr",
    "born_dead",
    "born_dead_ended_constant",
    "dead_layer_at_init",
    "collapsed",
    "p_collapsed",
    "ci_low",
    "ci_high",
    "plateaued",
    "median_final_loss",
    "median_final_loss_collapsed",
    "median_final_loss_live",
    "constant_fit_loss",
    "train_points",
    "grid_points",
]
COLLAPSE_NET_COLUMNS = [
    "activation",
    "init",
    "width",
    "depth",
    "net",
    "born_dead",
    "dead_layer_at_init",
    "ended_constant",
    "final_loss",
    "plateau",
    "steps",
]

Params = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: W (T, out, in), b (T, out, 1)


def cell_generator(seed: int, *key) -> torch.Generator:
    """A generator seeded from (seed, cell): every cell is reproducible on its own."""
    return torch.Generator().manual_seed(zlib.crc32(repr((seed, *key)).encode()))


def init_params(
    init: str, activation: str, width: int, depth: int, trials: int, gen: torch.Generator, dtype=torch.float64
) -> Params:
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
def constant_on_grid(params: Params, act: nn.Module, x: torch.Tensor, coarse: int = 9, chunk: int = 64) -> torch.Tensor:
    """(T,) bool: df/dx == 0 exactly at every point of x.

    The same answer as one pass over all of x, in stages: first `coarse` points spread over x, then
    the other points in chunks of `chunk`; a net with a nonzero df/dx at any point tested so far is
    proven non-constant and leaves, so only the nets still all-zero are tested on the next chunk.
    Why chunks: a net leaves a pass only once every point of the pass is settled, and a short pass
    settles sooner (and its state fits the cache)."""
    t_count = params[0][0].shape[0]
    if len(x) <= 2 * coarse:
        return _constant_at(params, act, x)
    first = torch.linspace(0, len(x) - 1, coarse).round().long()
    rest = torch.ones(len(x), dtype=torch.bool)
    rest[first] = False
    undecided = torch.arange(t_count)  # nets with df/dx == 0 at every point tested so far
    for pts in (x[first], *x[rest].split(chunk)):
        sub = params if len(undecided) == t_count else [(w[undecided], b[undecided]) for w, b in params]
        undecided = undecided[_constant_at(sub, act, pts)]
        if len(undecided) == 0:
            break
    out = torch.zeros(t_count, dtype=torch.bool)
    out[undecided] = True
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


def dead_layer(params: Params, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(T,) bool: some hidden layer outputs exactly zero at every point of x (a dead layer).

    A dead layer makes a net constant, but not conversely: with biases, a net can be constant
    because a different layer is all-off at different inputs (then training can revive it)."""
    t_count = params[0][0].shape[0]
    h = x.to(params[0][0].dtype).expand(t_count, 1, len(x))
    out = torch.zeros(t_count, dtype=torch.bool)
    with torch.no_grad():
        for w, b in params[:-1]:
            h = act(torch.baddbmm(b, w, h))
            out |= torch.count_nonzero(h, dim=(1, 2)) == 0
    return out


def train_to_plateau(
    params: Params,
    act: nn.Module,
    xt: torch.Tensor,
    yt: torch.Tensor,
    lr: float,
    min_steps: int,
    max_steps: int,
    window: int,
    tol: float,
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Full-batch Adam on the MSE of T nets at once, until every net is on a plateau.

    A net is on a plateau when its best loss so far improved by less than `tol` (relative) over the
    last `window` steps; training stops at the first multiple of `window` >= min_steps where every
    net is, or at max_steps. Adam is elementwise and the summed loss gives each net exactly its own
    gradient: these are T independent Adam runs. Returns (final per-net loss (T,), steps run,
    per-net plateau flag (T,))."""
    leaves = [p.requires_grad_(True) for wb in params for p in wb]
    opt = torch.optim.Adam(leaves, lr=lr, foreach=True)
    best = torch.full((params[0][0].shape[0],), math.inf)
    best_before = best.clone()  # the best loss `window` steps ago
    plateau = torch.zeros_like(best, dtype=torch.bool)
    step = 0
    while step < max_steps:
        opt.zero_grad(set_to_none=True)
        per_net = ((forward(params, act, xt) - yt) ** 2).mean(dim=1)  # (T,)
        per_net.sum().backward()
        opt.step()
        step += 1
        best = torch.minimum(best, per_net.detach())
        if step % window == 0:
            plateau = (best_before - best) < tol * best_before.clamp_min(1e-30)
            best_before = best.clone()
            if step >= min_steps and bool(plateau.all()):
                break
    with torch.no_grad():
        final = ((forward(params, act, xt) - yt) ** 2).mean(dim=1)
    return final, step, plateau


def collapse_cells(activation: str, inits: list[str], width: int, depth: int, *args, **kwargs):
    """One (width, depth) cell of `collapse_group` (same arguments after `depth`)."""
    return collapse_group(activation, inits, [width], depth, *args, **kwargs)


def pad(params: Params, width: int) -> Params:
    """A 1 -> w^depth -> 1 net embedded in a 1 -> width^depth -> 1 one (width >= w) by zero weights and biases.

    Exact, in training too: a padded unit computes f(0) = 0 (relu, leaky_relu), its outgoing weights
    are 0, so every padded parameter's gradient is exactly 0 (dL/dW_in = delta * h with delta = f'(0) *
    0; dL/dW_out = delta' * f(0)) and Adam leaves it at 0: the padded nets train as they would alone."""
    out = []
    for i, (w, b) in enumerate(params):
        t, fan_out, fan_in = w.shape
        rows = 1 if i == len(params) - 1 else width
        cols = 1 if i == 0 else width
        wp, bp = w.new_zeros(t, rows, cols), b.new_zeros(t, rows, 1)
        wp[:, :fan_out, :fan_in], bp[:, :fan_out] = w, b
        out.append((wp, bp))
    return out


def collapse_group(
    activation: str,
    inits: list[str],
    widths: list[int],
    depth: int,
    seeds: int,
    lr: float,
    points: int,
    seed: int,
    train_points: int = 65,
    min_steps: int = 2000,
    max_steps: int = 5000,
    window: int = 200,
    tol: float = 1e-6,
) -> tuple[list[dict], pd.DataFrame]:
    """Train `seeds` nets per init and width on y = |x| at `train_points` uniform points of D to a
    plateau (`train_to_plateau`): every init and width of this depth in one float32 batch (narrower
    nets zero-padded to the widest, `pad`), since a step costs about the same for 100 nets as for
    300. Count the nets ending constant (the exact test, in float64, on the `points` grid). Returns
    one summary row per (width, init) and the per-network table (born dead, dead layer at init,
    ended constant, final loss)."""
    top = max(widths)
    act = activations.build(activation, num_features=top)
    if any(True for _ in act.parameters()):
        # a learned activation parameter would be shared by every vectorised seed
        raise ValueError(f"collapse study needs a parameter-free activation, got {activation!r}")
    if len(widths) > 1 and float(act(torch.zeros(1))) != 0.0:
        # padding is exact only when f(0) = 0 (softplus, sigmoid: not): one batch per width then
        out = [
            collapse_group(
                activation, inits, [w], depth, seeds, lr, points, seed, train_points, min_steps, max_steps, window, tol
            )
            for w in widths
        ]
        return [r for rows, _ in out for r in rows], pd.concat([n for _, n in out], ignore_index=True)
    x = grid(points)
    cells, batch = [], []
    for width in widths:
        # each (init, width) draw is the same as if it were trained alone (its own cell generator)
        for init in inits:
            p = init_params(
                init, activation, width, depth, seeds, cell_generator(seed, "collapse", activation, init, width, depth)
            )
            cells.append((width, init, constant_on_grid(p, act, x), dead_layer(p, act, x)))
            batch.append(pad(p, top))
    params = [
        (torch.cat([c[i][0] for c in batch]).float(), torch.cat([c[i][1] for c in batch]).float())
        for i in range(depth + 1)
    ]  # (cells * seeds, ...); float32 training: op overhead and bandwidth
    xt = grid(train_points, torch.float32)
    yt = xt.abs()
    final, steps, plateau = train_to_plateau(params, act, xt, yt, lr, min_steps, max_steps, window, tol)
    trained = [(w.detach().double(), b.detach().double()) for w, b in params]
    best_constant = float(yt.double().var(unbiased=False))  # the MSE of the best constant, the mean of y
    rows, nets = [], []
    for c, (width, init, born_dead, dead_at_init) in enumerate(cells):
        sl = slice(c * seeds, (c + 1) * seeds)
        # unpad (the padded units stayed exactly 0) and test the net as it is
        mine = [
            (w[sl, :fan_out, :fan_in], b[sl, :fan_out])
            for (w, b), (fan_out, fan_in) in zip(trained, _shapes(width, depth))
        ]
        ended = constant_on_grid(mine, act, x)
        g = pd.DataFrame(
            {
                "activation": activation,
                "init": init,
                "width": width,
                "depth": depth,
                "net": range(seeds),
                "born_dead": born_dead.numpy(),
                "dead_layer_at_init": dead_at_init.numpy(),
                "ended_constant": ended.numpy(),
                "final_loss": final[sl].double().numpy(),
                "plateau": plateau[sl].numpy(),
                "steps": steps,
            }
        )
        nets.append(g)
        k = int(g["ended_constant"].sum())
        lo, hi = wilson(k, seeds)
        bd = g[g["born_dead"]]
        med = lambda s: float(s.median()) if len(s) else math.nan  # noqa: E731
        rows.append(
            {
                "activation": activation,
                "init": init,
                "depth": depth,
                "width": width,
                "seeds": seeds,
                "steps": steps,
                "min_steps": min_steps,
                "max_steps": max_steps,
                "plateau_window": window,
                "plateau_tol": tol,
                "lr": lr,
                "born_dead": len(bd),
                "born_dead_ended_constant": int(bd["ended_constant"].sum()),
                "dead_layer_at_init": int(g["dead_layer_at_init"].sum()),
                "collapsed": k,
                "p_collapsed": k / seeds,
                "ci_low": lo,
                "ci_high": hi,
                "plateaued": int(g["plateau"].sum()),
                "median_final_loss": float(g["final_loss"].median()),
                "median_final_loss_collapsed": med(g.loc[g["ended_constant"], "final_loss"]),
                "median_final_loss_live": med(g.loc[~g["ended_constant"], "final_loss"]),
                "constant_fit_loss": best_constant,
                "train_points": train_points,
                "grid_points": points,
            }
        )
    return rows, pd.concat(nets, ignore_index=True)[COLLAPSE_NET_COLUMNS]


def _shapes(width: int, depth: int) -> list[tuple[int, int]]:
    """(fan_out, fan_in) of each layer of a 1 -> width^depth -> 1 net."""
    sizes = [1] + [width] * depth + [1]
    return list(zip(sizes[1:], sizes[:-1]))


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


QUICK = {
    "trials": 200,
    "control_trials": 100,
    "widths": [1, 2, 3],
    "depths": [2, 5, 10],
    "collapse_seeds": 16,
    "collapse_min_steps": 100,
    "collapse_max_steps": 200,
    "collapse_cells": [(2, 5)],
}
DEFAULTS = {
    "trials": 10_000,
    "control_trials": 1000,
    "widths": [1, 2, 3, 5, 10],
    "depths": [2, 5, 10, 20, 50],
    "collapse_seeds": 50,
    "collapse_min_steps": 2000,
    "collapse_max_steps": 5000,
    "collapse_cells": [(2, 10), (3, 10)],
}


def parse(argv: list[str]) -> argparse.Namespace:
    ap = _Parser(prog="python -m actlab.depth", description="Born-dead probability and collapse of deep narrow MLPs.")
    ap.add_argument("--out-dir", type=Path, default=Path("results/depth"))
    ap.add_argument("--trials", type=int, default=None, help="random inits per born-dead cell (default 10000)")
    ap.add_argument("--activations", type=_names, default=["relu"], help="the studied activations (default relu)")
    ap.add_argument(
        "--controls",
        type=_names,
        default=["leaky_relu"],
        help="controls that can never be born dead (f' never 0), with --control-trials; '' for none",
    )
    ap.add_argument("--control-trials", type=int, default=None, help="random inits per control cell (default 1000)")
    ap.add_argument("--inits", type=_names, default=list(INITS))
    ap.add_argument("--widths", type=_ints, default=None, help="default 1,2,3,5,10")
    ap.add_argument("--depths", type=_ints, default=None, help="hidden layers; default 2,5,10,20,50")
    ap.add_argument("--grid", type=int, default=257, help="grid points on [-sqrt3, sqrt3] (>= 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--collapse", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--collapse-cells", type=_cells, default=None, help="WIDTHxDEPTH list; default 2x10,3x10")
    ap.add_argument("--collapse-activations", type=_names, default=["relu"])
    ap.add_argument("--collapse-seeds", type=int, default=None, help="nets per init and cell; default 50")
    ap.add_argument("--collapse-min-steps", type=int, default=None, help="full-batch Adam steps at least; default 2000")
    ap.add_argument("--collapse-max-steps", type=int, default=None, help="full-batch Adam steps at most; default 5000")
    ap.add_argument("--collapse-window", type=int, default=200, help="plateau window (steps)")
    ap.add_argument(
        "--collapse-tol",
        type=float,
        default=1e-6,
        help="plateau: best loss improved by less than this (relative) over the window",
    )
    ap.add_argument("--collapse-lr", type=float, default=1e-3)
    ap.add_argument("--collapse-points", type=int, default=65, help="training inputs on [-sqrt3, sqrt3] (>= 2)")
    ap.add_argument("--quick", action="store_true", help="small defaults (for tests): " + str(QUICK))
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads (default 1: many small ops, which extra threads slow down)",
    )
    a = ap.parse_args(argv)
    for k, v in (QUICK if a.quick else DEFAULTS).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    for name in (*a.activations, *a.controls, *a.collapse_activations):
        activations.spec(name)  # UnknownActivation names the valid ones
    for name in a.collapse_activations:
        if any(True for _ in activations.build(name, num_features=2).parameters()):
            raise UsageError(
                f"--collapse-activations: {name!r} has learned parameters, which the vectorised "
                f"seeds would share; use a parameter-free activation"
            )
    for init in a.inits:
        if init not in INITS:
            raise UsageError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    both = sorted(set(a.activations) & set(a.controls))
    checks = [
        (a.trials >= 1, f"--trials must be >= 1, got {a.trials}"),
        (a.control_trials >= 1, f"--control-trials must be >= 1, got {a.control_trials}"),
        (not both, f"--activations and --controls share {', '.join(both)}"),
        (a.grid >= 2, f"--grid must be >= 2, got {a.grid}"),
        (a.collapse_seeds >= 1, f"--collapse-seeds must be >= 1, got {a.collapse_seeds}"),
        (a.collapse_min_steps >= 0, f"--collapse-min-steps must be >= 0, got {a.collapse_min_steps}"),
        (
            a.collapse_max_steps >= a.collapse_min_steps,
            f"--collapse-max-steps must be >= --collapse-min-steps, got {a.collapse_max_steps}",
        ),
        (a.collapse_window >= 1, f"--collapse-window must be >= 1, got {a.collapse_window}"),
        (a.collapse_tol >= 0 and math.isfinite(a.collapse_tol), f"--collapse-tol must be >= 0, got {a.collapse_tol}"),
        (a.collapse_lr > 0 and math.isfinite(a.collapse_lr), f"--collapse-lr must be > 0, got {a.collapse_lr}"),
        (a.collapse_points >= 2, f"--collapse-points must be >= 2, got {a.collapse_points}"),
        (a.threads >= 1, f"--threads must be >= 1, got {a.threads}"),
        (bool(a.activations) and bool(a.inits), "--activations and --inits must not be empty"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UsageError(msg)
    for key in ("activations", "controls", "inits", "widths", "depths", "collapse_activations", "collapse_cells"):
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
    t0, c0 = time.perf_counter(), time.process_time()
    cells = [(act, "study", a.trials) for act in a.activations] + [
        (act, "control", a.control_trials) for act in a.controls
    ]
    rows = [
        {**born_dead_cell(act, init, w, d, trials, a.grid, a.seed), "role": role}
        for act, role, trials in cells
        for init in a.inits
        for w in a.widths
        for d in a.depths
    ]
    born = pd.DataFrame(rows, columns=BORN_DEAD_COLUMNS)
    atomic.write_csv(a.out_dir / "born_dead.csv", born)
    t1, c1 = time.perf_counter(), time.process_time()
    print(
        f"born_dead.csv: {len(born)} cells ({a.trials} trials, controls {a.control_trials}) in {t1 - t0:.1f}s "
        f"({c1 - c0:.1f}s CPU)",
        flush=True,
    )
    collapse = None
    if a.collapse:
        rows, nets = [], []
        by_depth: dict[int, list[int]] = {}
        for w, d in a.collapse_cells:  # the cells of one depth train as one batch (collapse_group)
            by_depth.setdefault(d, []).append(w)
        for act in a.collapse_activations:
            for d, ws in by_depth.items():
                r, n = collapse_group(
                    act,
                    a.inits,
                    ws,
                    d,
                    a.collapse_seeds,
                    a.collapse_lr,
                    a.grid,
                    a.seed,
                    a.collapse_points,
                    a.collapse_min_steps,
                    a.collapse_max_steps,
                    a.collapse_window,
                    a.collapse_tol,
                )
                rows += r
                nets.append(n)
        collapse = pd.DataFrame(rows, columns=COLLAPSE_COLUMNS)
        per_net = pd.concat(nets, ignore_index=True)[COLLAPSE_NET_COLUMNS]
        atomic.write_csv(a.out_dir / "collapse_nets.csv", per_net)
        atomic.write_csv(a.out_dir / "collapse.csv", collapse)
        print(
            f"collapse.csv: {len(collapse)} cells x {a.collapse_seeds} seeds, {int(collapse['steps'].min())}-"
            f"{int(collapse['steps'].max())} steps, in {time.perf_counter() - t1:.1f}s "
            f"({time.process_time() - c1:.1f}s CPU)",
            flush=True,
        )
        bad = per_net[per_net["born_dead"] & ~per_net["ended_constant"]]
        if len(bad):  # Lu et al.: a born-dead net is trained to a constant; recorded, and said loudly
            print(f"warning: {len(bad)} born-dead nets did not end constant (collapse_nets.csv)", file=sys.stderr)
    return born, collapse


def main(argv: list[str] | None = None) -> None:
    try:
        run(parse(sys.argv[1:] if argv is None else argv))
    except (UsageError, activations.UnknownActivation) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
