"""Seconds per training epoch and per activation call, measured in interleaved rounds in one process,
and their summary: the measurement of the controlled timing (``python -m actlab.timing``).

- One *epoch* = a pass over the samples in mini-batches of ``batch_size`` in a shuffled order
  (index gather, forward, loss, zero_grad, backward, optimiser step: the config's optimiser, Adam by
  default), as in training, without validation, probes or Lightning. On CUDA the clock is read
  after torch.cuda.synchronize().
- Design: every activation has its own model and optimiser; the rounds are interleaved round-robin
  (round r times one epoch of every activation, starting at activation r mod k, so no activation
  always follows the same one), ``warmup`` rounds first and discarded, then ``repeats`` rounds. All
  activations of one round see the same batch order. Load drift of the machine thus hits every
  activation alike, and the per-round ratio to the baseline (ReLU) cancels the drift slower than a
  round. Python's garbage collector is off while the clock runs.
- Micro-benchmark: the activation module alone, forward + backward on a (batch_size, width) tensor,
  ``inner`` calls per measurement (reported per call), measured in the same rounds. A MLP step is
  mostly matrix products; this isolates what the activation itself costs.

Statistics (per activation; n = ``repeats``): the median, and a distribution-free 95% confidence
interval of the median from order statistics (`actlab.intervals.median_ci`; n >= 6 needed). The
ratio to the baseline is the median of the per-round ratios t_act / t_baseline, with the same
interval (the baseline's ratio is exactly 1).
"""

from __future__ import annotations

import gc
import math
import time

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from actlab import activations, fit, models, optim
from actlab.intervals import median_ci
from actlab.losses import per_model_losses


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    acts: list[str], s: dict, repeats: int, warmup: int, inner: int, device: torch.device, seed: int = 0, log=print
) -> tuple[dict, dict]:
    """Seconds per epoch and per activation call, {activation: [one value per repeat]} each."""
    torch.manual_seed(seed)
    n, b = s["samples"], s["batch_size"]
    x = torch.randn(n, *s["in_shape"], device=device)
    if s["task"] == "classification":
        y = torch.randint(0, s["classes"], (n,), device=device)
    else:
        y = torch.randn(n, s["classes"], device=device)
    steps = math.ceil(n / b)
    mcfg = OmegaConf.create(s["model"])
    nets, opts, units = {}, {}, {}
    for act in acts:
        # the engine's model (K=1), optimizer (weight-decay groups, fused) and loss, as a run trains
        net = models.build(mcfg, s["in_shape"], s["classes"], act, {})
        nets[act] = fit.stack(mcfg.name, [net], [(0, 1)]).to(device)
        opt = optim.configure(nets[act], OmegaConf.create(s["optimizer"]), max_epochs=1)
        opts[act] = opt["optimizer"] if isinstance(opt, dict) else opt
        units[act] = activations.build(act, num_features=s["model"]["width"]).to(device)
    z = torch.randn(b, s["model"]["width"], device=device, requires_grad=True)
    g = torch.randn(b, s["model"]["width"], device=device)
    gen = torch.Generator().manual_seed(seed)

    def epoch(act, order):
        net, opt = nets[act], opts[act]
        _sync(device)
        t0 = time.perf_counter()
        for i in range(steps):
            idx = order[i * b : (i + 1) * b]
            loss = per_model_losses(net(x[idx][None]), y[idx][None], s["task"], False)[0].sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        return time.perf_counter() - t0

    def alone(act):
        unit = units[act]
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(inner):
            z.grad = None
            unit(z).backward(g)
        _sync(device)
        return (time.perf_counter() - t0) / inner

    per_epoch = {a: [] for a in acts}
    per_call = {a: [] for a in acts}
    k = len(acts)
    gc.collect()
    gc.disable()
    try:
        for r in range(warmup + repeats):
            order = torch.randperm(n, generator=gen).to(device)
            t_round = time.perf_counter()
            for act in acts[r % k :] + acts[: r % k]:
                te, ta = epoch(act, order), alone(act)
                if r >= warmup:
                    per_epoch[act].append(te)
                    per_call[act].append(ta)
            kind = "warm-up" if r < warmup else "repeat"
            log(f"round {r + 1}/{warmup + repeats} ({kind}): {time.perf_counter() - t_round:.2f}s", flush=True)
    finally:
        gc.enable()
    return per_epoch, per_call


def summarise(per_epoch: dict, per_call: dict, baseline: str) -> pd.DataFrame:
    """One row per activation: medians, their CIs, and the per-round ratios to `baseline`."""
    rows = []
    base_e, base_a = np.asarray(per_epoch[baseline]), np.asarray(per_call[baseline])
    for act in per_epoch:
        e, c = np.asarray(per_epoch[act]), np.asarray(per_call[act])
        med, lo, hi = median_ci(e)
        r, rlo, rhi = median_ci(e / base_e)
        am, alo, ahi = median_ci(c)
        ar, arlo, arhi = median_ci(c / base_a)
        rows.append(
            {
                "activation": act,
                "family": activations.spec(act).family,
                "baseline": baseline,
                "s_per_epoch": med,
                "ci_low": lo,
                "ci_high": hi,
                "ratio": r,
                "ratio_ci_low": rlo,
                "ratio_ci_high": rhi,
                "act_s": am,
                "act_ci_low": alo,
                "act_ci_high": ahi,
                "act_ratio": ar,
                "act_ratio_ci_low": arlo,
                "act_ratio_ci_high": arhi,
                "mean_s_per_epoch": float(e.mean()),
                "min_s_per_epoch": float(e.min()),
                "max_s_per_epoch": float(e.max()),
            }
        )
    return pd.DataFrame(rows)
