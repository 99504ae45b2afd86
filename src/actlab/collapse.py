"""Collapse after training: do deep narrow MLPs (actlab.depthnets) trained on y = |x| end as a
constant function, and do the born-dead ones always? The collapse.csv and collapse_nets.csv of
``python -m actlab.depth`` (Lu, Shin, Su & Karniadakis, "Dying ReLU and Initialization: Theory and
Numerical Examples", Commun. Comput. Phys. 28(5), 2020).

For a few (width, depth) cells, ``seeds`` independent nets per init (vectorised: one batched
parameter tensor per layer, all inits in one batch) are trained in float32 by full-batch Adam on y = |x| at ``train_points`` uniform points of D (MSE) to a plateau: at least
``min_steps`` steps, then stopping at the first multiple of ``window`` at which every net's best
loss improved by less than ``tol`` (relative) over the last ``window`` steps, or at ``max_steps``.
The nets that end as a constant function (the same exact test, in float64, on the ``grid`` points)
are counted, and per net it is recorded whether it was born dead, whether it had a dead layer (one
outputting 0 at every grid point: Lu et al.'s mechanism, which keeps it constant under any gradient
method), whether it ended constant and its final loss; the summary gives the median final loss of
the collapsed nets and of the others beside ``constant_fit_loss`` = the MSE of the best constant,
Var(y) on the training points. Wilson 95% score intervals (actlab.intervals.wilson) for the
probability of collapse.
"""

from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn

from actlab import activations
from actlab.depthnets import Params, cell_generator, constant_on_grid, dead_layer, forward, grid, init_params
from actlab.intervals import wilson

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
