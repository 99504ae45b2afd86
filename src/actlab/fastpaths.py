"""Every use of torch's private internals, behind capability checks with a public fallback.

- ACT_BACKWARD: aten's activation backward kernels (`torch.ops.aten.*_backward`), the hand-written
  backward of the stacked MLP (actlab.stacked_mlp). Fallback: autograd (`have_act_backward()`).
- DirectStep: fused Adam's kernels (`torch._fused_adam_` / `_fused_adamw_`) called with the
  gradients autograd returns, skipping `Adam.step`'s Python. Fallback: `opt.step()`, taken whenever
  anything is not the plain case (`have_fused_adam()`, hooks, SGD, the first step).
- keep_freed_memory: glibc's mallopt. Fallback: nothing (the allocator's default).
Each is on only where benchmarks/bench_train.py measured it worth >= 10 % of a step
(benchmarks/RESULTS.md); the fallbacks are tested to give the same numbers (tests/test_vectorized.py).
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from actlab import activations

_aten = torch.ops.aten

# The kernel autograd runs for each activation's backward, by module type: dz = f'(z) * dh, from
# (module, dh, z, h = f(z)). StackedMLP.losses_and_grads uses them (PReLU, stacked with its slopes, has
# its own in StackedAct.backward). An activation missing here trains through autograd instead.
ACT_BACKWARD = {
    nn.ReLU: lambda m, dh, z, h: _aten.threshold_backward(dh, h, 0),
    nn.LeakyReLU: lambda m, dh, z, h: _aten.leaky_relu_backward(dh, z, m.negative_slope, False),
    nn.ELU: lambda m, dh, z, h: _aten.elu_backward(dh, m.alpha, 1, 1, False, z),
    # torch.selu is elu(x, alpha, scale) with its own constants, which are the paper's (eq. 14)
    nn.SELU: lambda m, dh, z, h: _aten.elu_backward(dh, activations.SELU_ALPHA, activations.SELU_LAMBDA, 1, False, z),
    nn.GELU: lambda m, dh, z, h: _aten.gelu_backward(dh, z, approximate=m.approximate),
    nn.SiLU: lambda m, dh, z, h: _aten.silu_backward(dh, z),
    activations.Mish: lambda m, dh, z, h: _aten.mish_backward(dh, z),
    nn.Softplus: lambda m, dh, z, h: _aten.softplus_backward(dh, z, m.beta, m.threshold),
    nn.Tanh: lambda m, dh, z, h: _aten.tanh_backward(dh, h),
    nn.Sigmoid: lambda m, dh, z, h: _aten.sigmoid_backward(dh, h),
}


def have_act_backward() -> bool:
    """Whether this torch has every aten kernel ACT_BACKWARD calls (else the stacked MLP uses autograd)."""
    names = (
        "threshold_backward",
        "leaky_relu_backward",
        "elu_backward",
        "gelu_backward",
        "silu_backward",
        "mish_backward",
        "softplus_backward",
        "tanh_backward",
        "sigmoid_backward",
    )
    return all(hasattr(_aten, n) for n in names)


def have_fused_adam() -> bool:
    """Whether this torch has the fused Adam kernels and the optimizer hook registries DirectStep checks."""
    try:
        from torch.optim import optimizer  # imported here: a capability probe

        return (
            hasattr(torch, "_fused_adam_")
            and hasattr(torch, "_fused_adamw_")
            and hasattr(optimizer, "_global_optimizer_pre_hooks")
            and hasattr(optimizer, "_global_optimizer_post_hooks")
        )
    except ImportError:
        return False


def keep_freed_memory() -> None:
    """glibc: serve large allocations from the heap and keep freed memory (instead of an mmap and
    page faults every step for each multi-MB gradient: ~15% of a K=10 step on CPU). Process-wide;
    costs at most the retained heap. No-op where glibc's mallopt is unavailable."""
    if not USE["mallopt"]:
        return
    try:
        import ctypes  # imported here: only on Linux, once per run

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD: glibc's maximum, 32 MiB
        libc.mallopt(-1, 512 * 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


class DirectStep:
    """`opt.step()` for gradients handed over as a list (from `torch.autograd.grad`, so there is no
    .grad accumulation and no zero_grad). For fused Adam, the vectorised trainer's optimizer on CPU
    and CUDA, it makes the two kernel calls `Adam.step` makes, with the same arguments and the same
    optimizer state. `Adam.step`'s Python (grouping tensors by device and dtype, per-parameter state
    checks, hooks, profiler labels) and `zero_grad` took ~0.1 ms a step on the development CPU: the
    fixed cost of a step went from 0.58 to 0.34 ms (benchmarks/RESULTS.md). Anything else (SGD,
    amsgrad, step hooks, the first step, which creates the state) sets `.grad` and calls `opt.step()`."""

    def __init__(self, opt: torch.optim.Optimizer, params: list[nn.Parameter]):
        self.opt, self.params = opt, params
        index = {id(p): i for i, p in enumerate(params)}
        self.group_index = [[index[id(p)] for p in g["params"]] for g in opt.param_groups]
        self._state = None  # the opt.state the cached lists belong to (load_state_dict replaces it)
        self._lists: list[tuple] = []

    def _fast(self) -> bool:
        opt = self.opt
        if opt.state is self._state:
            return True
        if not (USE["fused_adam"] and isinstance(opt, torch.optim.Adam)):
            return False
        if opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks:
            return False
        from torch.optim.optimizer import (  # capability-checked
            _global_optimizer_post_hooks,
            _global_optimizer_pre_hooks,
        )

        if _global_optimizer_pre_hooks or _global_optimizer_post_hooks:
            return False
        lists = []
        for g, idx in zip(opt.param_groups, self.group_index):
            st = [opt.state.get(self.params[i]) for i in idx]
            plain = g.get("fused") and not (g["amsgrad"] or g["maximize"] or g["capturable"] or g["differentiable"])
            if not plain or any(not s for s in st) or any(isinstance(v, torch.Tensor) for v in (g["lr"], *g["betas"])):
                return False
            lists.append(
                (
                    g,
                    [self.params[i] for i in idx],
                    [s["exp_avg"] for s in st],
                    [s["exp_avg_sq"] for s in st],
                    [s["step"] for s in st],
                    idx,
                )
            )
        self._state, self._lists = opt.state, lists
        return True

    def __call__(self, grads: tuple[torch.Tensor, ...]) -> None:
        # torch's fused CPU Adam (2.13; this kernel and opt.step(), fused=True) walks a gradient in memory
        # order: one in another layout than its parameter gets a wrong update from the second step on.
        # actlab.stacked_cnn's gradients come so (its convolutions' weights channels-last, its linear
        # weights transposed): copied into the parameter's layout, (K, ...) x a few layers, ~1% of a step.
        grads = [g if g.stride() == p.stride() else torch.empty_like(p).copy_(g) for p, g in zip(self.params, grads)]
        if not self._fast():
            for p, g in zip(self.params, grads):
                p.grad = g
            self.opt.step()
            for p in self.params:
                p.grad = None
            return
        for g, ps, exp_avgs, exp_avg_sqs, steps, idx in self._lists:
            torch._foreach_add_(steps, 1)
            kernel = torch._fused_adamw_ if g.get("decoupled_weight_decay") else torch._fused_adam_
            kernel(
                ps,
                [grads[i] for i in idx],
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                lr=g["lr"],
                beta1=g["betas"][0],
                beta2=g["betas"][1],
                weight_decay=g["weight_decay"],
                eps=g["eps"],
                maximize=False,
            )


# Which fast paths are on: each only where this torch / platform has it (the capability checks above).
# Tests and benchmarks/bench_train.py switch them off to check the fallbacks and measure each one's gain.
USE = {
    "act_backward": have_act_backward(),
    "fused_adam": have_fused_adam(),
    "mallopt": sys.platform.startswith("linux"),
}
