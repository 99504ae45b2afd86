"""K `actlab.models.CNN`s run explicitly on stacked parameters, without vmap: each convolution is ONE
grouped convolution over the K models (groups = K) on a channels-last tensor.

Layout: a hidden tensor is (B, K*C, S, L) in channels-last memory, model k owning channels
k*C..(k+1)*C-1 (images: S x L = H x W; sequences: S = 1, a Conv1d as a (1, 3) kernel). Activations
(each group's slice of channels; PReLU by torch's own prelu, one slope per model and channel) and max
pooling run on it as is; the flatten before the classifier gives each model its (C, *spatial) order,
as its own module; the classifier is two batched matmuls (K, B, in) @ (K, in, out). Autograd
differentiates it.

Why this shape (benchmarks/RESULTS.md, 2026-11-30, one thread of the 2-core EPYC): the 28x28 step is
~90% convolutions, which oneDNN runs at ~45 GFLOP/s per model already (large GEMM: ~60), so batching
cannot buy FLOP rate there; what it buys is the first layer (1 input channel: K=10 plain convs 82 ms
fwd+bwd at batch 32, one grouped channels-last conv 26 ms; grouped NCHW 90 ms), fewer ops per step,
and none of vmap's costs (its max pool over the batched layout: ~16% of a step). im2col + bmm was
tried and measured: 1.6x slower at 28x28 (the column copies and col2im cost more than the GEMMs gain).

Every model's numbers are those of its own `models.CNN` to rounding (tests/test_stacked_cnn.py). The
gradients of the weights come out channels-last / transposed: fastpaths.DirectStep copies them into
their parameters' layout (torch's fused CPU Adam needs it). `plan()` says whether a net is a CNN this
module can run (3-tap convolutions, padding 1, stride 1; max pools of 2; activations known to be
elementwise); otherwise actlab.stacked_vmap runs it through vmap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from actlab import fastpaths, models

_CONV = (nn.Conv1d, nn.Conv2d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d)
# Activations known to be elementwise (so layout-free): the built-in ones, which all have a backward
# kernel in fastpaths.ACT_BACKWARD, and PReLU (its slope is applied on the channel dim here). Any other
# (a registered activation this module cannot vouch for) goes through vmap.
_ELEMENTWISE = (*fastpaths.ACT_BACKWARD, nn.PReLU)


def plan(net: nn.Module) -> list[tuple[str, str]] | None:
    """[(kind, child name)] of `net`'s layers in forward order, kind in unflatten / conv / act / pool
    / flatten / linear; None when `net` is not a CNN this module runs (the caller uses vmap)."""
    if not isinstance(net, models.CNN):
        return None
    steps: list[tuple[str, str]] = []
    for name, m in net.named_children():
        if isinstance(m, nn.Unflatten):
            kind = "unflatten"
        elif isinstance(m, _CONV):
            ok = (
                all(k == 3 for k in m.kernel_size)
                and all(p == 1 for p in m.padding)
                and all(s == 1 for s in m.stride)
                and all(d == 1 for d in m.dilation)
                and m.groups == 1
                and m.bias is not None
                and m.padding_mode == "zeros"
            )
            kind = "conv" if ok else ""
        elif isinstance(m, _POOL):
            ks = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,)
            st = m.stride if isinstance(m.stride, tuple) else (m.stride,)
            pd = m.padding if isinstance(m.padding, tuple) else (m.padding,)
            ok = set(ks) == {2} and set(st) == {2} and set(pd) == {0} and m.dilation in (1, (1, 1), (1,))
            kind = "pool" if ok and not m.ceil_mode and not m.return_indices else ""
        elif isinstance(m, nn.Flatten):
            kind = "flatten" if m.start_dim == 1 and m.end_dim == -1 else ""
        elif isinstance(m, nn.Linear):
            kind = "linear" if m.bias is not None else ""
        elif name.startswith("act"):
            kind = "act" if type(m) in _ELEMENTWISE else ""
        else:
            kind = ""
        if not kind:
            return None
        steps.append((kind, name))
    return steps


def _conv(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """h (B, K*C, S, L) channels-last -> (B, K*C_out, S, L); w (K, C_out, C, *kernel), b (K, C_out).
    One grouped convolution (groups = K models); a 1-D layer (S = 1) as a (1, 3) kernel."""
    if w.dim() == 4:  # Conv1d's (K, C_out, C, 3)
        w, pad = w.unsqueeze(3), (0, 1)
    else:
        pad = (1, 1)
    return F.conv2d(h, w.reshape(-1, *w.shape[2:]), b.reshape(-1), padding=pad, groups=k)


def _act(h: torch.Tensor, fns: list[nn.Module], slopes: list, groups: list[tuple[int, int]]) -> torch.Tensor:
    """Each group's activation on its models' part of h: (B, K*C, S, L) after a convolution (model k
    owns channels k*C..(k+1)*C-1), or (K, B, F) after a linear layer. The template's module as is
    (elementwise), or PReLU with its stacked slope (k, C or 1) per model and channel."""
    k = groups[-1][1]
    conv = h.dim() == 4
    c = h.shape[1] // k if conv else h.shape[2]
    parts = []
    for (a, b), fn, slope in zip(groups, fns, slopes):
        part = h if len(groups) == 1 else h[:, a * c : b * c] if conv else h[a:b]
        if slope is not None and conv:  # nn.PReLU's own op, one slope per (model, channel)
            part = F.prelu(part, slope.expand(b - a, c).reshape(-1))
        elif slope is not None:  # nn.PReLU: x if x > 0 else a * x (torch's gradient convention at 0: slope a)
            part = torch.where(part > 0, part, slope.unsqueeze(1) * part)
        else:
            part = fn(part)
        parts.append(part)
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1 if conv else 0)


def forward(
    steps: list[tuple[str, str]],
    params: dict[str, torch.Tensor],
    acts: dict[str, tuple[list[nn.Module], list]],
    groups: list[tuple[int, int]],
    k: int,
    x: torch.Tensor,
    shared: bool,
) -> torch.Tensor:
    """K CNNs on x (K, B, *in), or (B, *in) with shared=True; returns (K, B, classes).
    params: the stacked layer parameters by the module's names ("conv1.weight": (K, ...));
    acts: per activation layer, (each group's template module, each group's stacked PReLU slope or None)."""
    h = x.unsqueeze(1).expand(-1, k, *x.shape[1:]) if shared else x.movedim(0, 1)  # (B, K, *in)
    if steps[0][0] == "unflatten":  # a (L,) sequence: one channel
        h = h.unsqueeze(2)
    pool = (2, 2) if h.dim() == 5 else (1, 2)  # images (B, K, C, H, W), else sequences
    b = h.shape[0]
    h = h.reshape(b, -1, *h.shape[3:])  # (B, K*C, *s)
    if h.dim() == 3:  # a sequence (B, K*C, L) as (B, K*C, 1, L)
        h = h.unsqueeze(2)
    h = h.contiguous(memory_format=torch.channels_last)
    for kind, name in steps:
        if kind == "conv":
            h = _conv(h, params[f"{name}.weight"], params[f"{name}.bias"], k)
        elif kind == "act":
            h = _act(h, *acts[name], groups)
        elif kind == "pool":
            h = F.max_pool2d(h, pool)
        elif kind == "flatten":  # each model's (C, *s), the per-model module's order: (K, B, C*prod(s))
            h = h.reshape(b, k, -1).transpose(0, 1)
        elif kind == "linear":  # (K, B, in) @ (K, in, out)
            w, bias = params[f"{name}.weight"], params[f"{name}.bias"]
            h = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
    return h
