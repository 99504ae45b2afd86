"""The unit measures of the dead-units probe: per hidden activation layer, which units are dead,
tau-dormant, saturated, pass no gradient or carry no information, on a fixed probe set.

Pure torch (no Lightning): the probe callback (actlab.probes.DeadUnits) calls `measure_units`, and
the article imports the constants and `peak_slope` without importing the trainer. The definitions
of every measure, with the tables they go to, are in actlab.probes' docstring.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from actlab import activations
from actlab.models import activation_layers

NO_GRADIENT_EPS = 0.01  # passes no gradient: |f'(z)| <= 1% of the activation's peak slope, every input
LOW_VARIANCE_DELTA = 0.01  # no information: Var(h_i) <= 1% of the layer's mean variance (= tau^2, SD 10%)


def _capture_preactivations(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Forward x through model in eval mode under no_grad; return each act layer's input z."""
    acts = activation_layers(model)
    zs: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out, name=name: zs.__setitem__(name, inp[0].detach()))
        for name, m in acts.items()
    ]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        for m, was_training in modes.items():
            m.train(was_training)
    return zs


def value_and_slope(act: nn.Module, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(z) and f'(z) elementwise, by autograd through the activation module (the gradient of
    sum f(z) w.r.t. z): works for every activation, PReLU's learned slope included. (A closed form
    for ReLU measured slower on CPU than torch's fused threshold_backward.)"""
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        h = act(zz)
        (d,) = torch.autograd.grad(h.sum(), zz)
    return h.detach(), d


@functools.cache
def peak_slope(activation: str) -> float:
    """max |f'(z)| over the reals of the registry's `activation` with its paper's default parameters,
    numerically: autograd on a grid of z in [-20, 20], step 1e-4, in float64. (Every registered
    activation's slope is monotone beyond |z| = 20, so the grid's maximum is the supremum up to the
    grid's resolution.) Cached: one grid per activation and process."""
    act = activations.build(activation).double()
    z = torch.linspace(-20.0, 20.0, 400_001, dtype=torch.float64)
    _, d = value_and_slope(act, z)
    return float(d.abs().max())


def _per_unit(t: torch.Tensor, reduce: str) -> torch.Tensor:
    """(N, C, ...) bool -> (C,): `reduce` ("any" or "all") over samples and positions."""
    t = getattr(t, reduce)(0)  # (C, ...)
    return getattr(t.flatten(1), reduce)(1) if t.ndim > 1 else t


def unit_stats(
    act: nn.Module,
    z: torch.Tensor,
    tol: float,
    tau: float,
    saturate_at: float | None,
    peak: float | None = None,
    eps: float = NO_GRADIENT_EPS,
    delta: float = LOW_VARIANCE_DELTA,
) -> dict[str, tuple[torch.Tensor, int]]:
    """Per-layer statistics of one activation module at pre-activations z of shape (N, C) or
    (N, C, H, W) (units = dim 1), as {metric: (numerator, denominator)}: the numerator a 0-d tensor
    still on z's device (fractions as exact integer counts), the value numerator / denominator.
    `peak` is the activation's peak slope (`peak_slope`); without it no_gradient_fraction is left out."""
    z = z.to(torch.promote_types(z.dtype, torch.float32))  # bf16 runs: measure in fp32; fp64 runs in fp64
    h, d = value_and_slope(act, z)
    d = d.abs()
    n, c = z.shape[:2]
    active = d > tol  # (N, C, ...)
    per_sample = active.flatten(2).any(-1) if z.ndim > 2 else active  # (N, C)
    e_abs = h.abs().mean([0, *range(2, z.ndim)])  # (C,) E|h_i| over samples and positions
    stats = {
        # dead = never active on any sample or position
        "dead_fraction": (c - torch.count_nonzero(_per_unit(per_sample, "any")), c),
        # s_i <= tau with s_i = E|h_i| / mean_j E|h_j|, written without the division (0/0 -> dormant)
        "dormant_fraction": (torch.count_nonzero(e_abs <= tau * e_abs.mean()), c),
        "mean_activation": (h.mean(), 1),
        "mean_abs_grad": (d.mean(), 1),
        # mean over samples of the fraction of active units = (active (sample, unit) pairs) / (N C)
        "active_per_sample": (torch.count_nonzero(per_sample), n * c),
    }
    if saturate_at is not None:
        stats["saturated_fraction"] = (torch.count_nonzero(_per_unit(z.abs() > saturate_at, "all")), c)
    if peak is not None:
        # float64 so that Leaky ReLU's slope 0.01 meets 0.01 * 1.0 alike in fp32 and fp64 runs
        flat = _per_unit(d.double() <= eps * peak, "all")  # (C,)
        stats["no_gradient_fraction"] = (torch.count_nonzero(flat), c)
    hc = h.double().transpose(0, 1).flatten(1)  # (C, N * H * W): each unit's outputs over the probe set
    var = hc.var(1, correction=0)  # (C,)
    stats["low_variance_fraction"] = (torch.count_nonzero(var <= delta * var.mean()), c)
    return stats


def measure_units(model: nn.Module, x: torch.Tensor, activation: str, tol: float, tau: float) -> list[dict]:
    """Rows (layer, metric, value) for every hidden activation layer of model on probe set x.
    One host sync for all layers."""
    sat = activations.spec(activation).saturate_at
    peak = peak_slope(activation)
    acts = activation_layers(model)
    zs = _capture_preactivations(model, x)
    keys, vals, dens = [], [], []
    for name, act in acts.items():
        if name not in zs:  # a layer the forward pass did not reach
            continue
        for metric, (v, den) in unit_stats(act, zs[name], tol, tau, sat, peak).items():
            keys.append((name, metric))
            vals.append(v)
            dens.append(den)
    # counts (int64) and means (float32) promote to float32: counts < 2**24 stay exact
    host = [v / den for v, den in zip(torch.stack(vals).cpu().tolist(), dens)] if vals else []
    rows = [{"layer": n, "metric": m, "value": v} for (n, m), v in zip(keys, host)]
    for name in acts:
        if name not in zs:
            continue
        consts = {
            "n_units": zs[name].shape[1],
            "probe_size": len(x),
            "tol": tol,
            "tau": tau,
            "eps": NO_GRADIENT_EPS,
            "peak_slope": peak,
            "delta": LOW_VARIANCE_DELTA,
        }
        if sat is not None:
            consts["saturate_at"] = sat
        rows += [{"layer": name, "metric": k, "value": float(v)} for k, v in consts.items()]
    return rows
