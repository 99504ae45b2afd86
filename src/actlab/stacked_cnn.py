"""K `actlab.models.CNN`s run explicitly on stacked parameters: each convolution as im2col + one
batched matmul over the K models, activations and pooling on channels-last views.

Layout: a hidden tensor is (K, B, *spatial, C) ("channels last" per model), so a convolution is
    cols (K, B*prod(spatial), C*taps) @ W^T (K, C*taps, C_out) -> (K, B*prod(spatial), C_out),
one GEMM per model with M = B*H*W rows (the weight (K, C_out, C_in, *kernel) views as
(K, C_out, C_in*taps) with no copy: the columns are in (C_in, *kernel) order, as `Tensor.unfold`
makes them), and the output is already the next layer's (K, B, *spatial, C_out). Max pooling runs on
the (K*B, C, *spatial) channels-last view (torch's max_pool: the first maximum of a window gets the
gradient, as in the per-model module). The flatten before the classifier goes back to the per-model
module's (C, *spatial) order. Autograd differentiates it.

Every model's numbers are those of its own `models.CNN` to rounding (tests/test_vectorized.py):
the same ops, only batched. `plan()` says whether a net is a CNN this module can run (3-tap
convolutions, padding 1, stride 1; max pools of 2; elementwise activations, PReLU per channel or per
layer); otherwise actlab.stacked_vmap runs it through vmap.
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
