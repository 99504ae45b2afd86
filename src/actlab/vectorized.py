"""The vectorised trainer: K independent models of one architecture trained as ONE batched computation.

A sweep is hundreds of small, identical-shape trainings; one at a time they are bound by per-step
overhead (Python, autograd, optimizer, Lightning). Here K models (different seeds and, optionally,
different activations) are stacked: every Linear layer holds a (K, in, out) weight and runs as one
`torch.baddbmm`, the K losses are summed (the gradient of the sum w.r.t. model k's slice is model
k's own gradient), and one optimizer steps the stacked parameters (fused Adam's kernels called
directly with the gradients autograd returns: `DirectStep`). Adam and SGD(+momentum) are
elementwise, so one optimizer over stacked tensors is exactly K optimizers; weight decay groups are
kept as in `actlab.module.LitModel` (weights decayed; biases and PReLU slopes never).

It is the same experiment as K separate `python -m actlab.train seed=S` runs:
- initialisation: model k = `models.build(...)` right after `seed_everything(seed_k)`, as in a run;
- data order: model k draws its batches from its own generator seeded with seed_k, the same
  `randperm` sequence `actlab.data.IndexBatches` produces; a batch is a gather with a (K, B) index;
- metrics: epoch means weighted by batch size, as Lightning's `self.log(on_epoch=True)`;
- divergence: a model whose epoch train loss diverges (actlab.callbacks.diverged) is marked so then, its
  rows stop there (as a single run stops), the others train on (NaNs never cross model slices);
- probes: every model gets its own dead_units.csv (actlab.probes.DeadUnits, measured on a per-model
  view: the model's slice copied into a `models.build()`-shaped module) and grad_flow.csv (same
  metrics as actlab.probes.GradFlow, computed for all K at once on the stacked gradients).
Agreement is to floating-point tolerance (batched matmuls round differently), not bit-exact: with
`trainer.precision=64-true` (both paths in float64) to ~1e-10 relative, in float32 to the tolerance
derived in tests/test_vectorized.py (docs/reliability.md, "Numerics").

Everything runs inside ONE Lightning run. With manual optimisation each Lightning training_step
takes a chunk of ``trainer.steps_per_call`` mini-batches and loops over them, which amortises
Lightning's per-step cost. Data stay on the device; the step has no host sync (metrics accumulate on
the device and come to the host once per epoch).

Supported: the MLP (`model=mlp`), classification or regression, any registered activation, Adam
or SGD, any schedule. `supported(cfg)` says why not otherwise; `actlab.train` then trains the
seeds one after the other.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from actlab import activations, atomic, data, integrity, models, probes
from actlab.callbacks import chance_loss, diverged
from actlab.data import Splits
from actlab.module import TensorData, make_optimizer

log = logging.getLogger(__name__)

# Keys that may differ between the models of one vectorised run; everything else must be equal.
PER_MODEL_KEYS = ("seed", "seeds", "run_dir", "activation")


def supported(cfg: DictConfig) -> tuple[bool, str]:
    """(True, '') if cfg's model can be vectorised, else (False, the reason)."""
    if cfg.model.name not in ("mlp", "cnn"):
        return False, f"model {cfg.model.name!r} (the MLP and the CNN are vectorised)"
    if str(cfg.trainer.precision) in ("16-mixed", "16", "16-true"):
        return False, "fp16 precision needs a gradient scaler per model (use bf16-mixed, 32-true or 64-true)"
    return True, ""


def _shared_part(cfg: DictConfig) -> dict:
    c = OmegaConf.to_container(cfg, resolve=True)
    for k in PER_MODEL_KEYS:
        c.pop(k, None)
    c.get("model", {}).pop("init", None)  # init only changes the initial values, not the shapes
    return c


def check_compatible(cfgs: list[DictConfig]) -> None:
    from actlab.train import ConfigError

    ref = _shared_part(cfgs[0])
    for c in cfgs[1:]:
        if _shared_part(c) != ref:
            raise ConfigError("vectorised runs must differ only in seed, run_dir and activation")
    dirs = [str(c.run_dir) for c in cfgs]
    if len(set(dirs)) != len(dirs):
        raise ConfigError("vectorised runs need distinct run dirs")


def consecutive_groups(keys: list) -> list[tuple[int, int]]:
    """[(start, end)] of the runs of equal consecutive keys: the activation groups of a StackedMLP."""
    first = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    return list(zip(first, first[1:] + [len(keys)]))


def _act_key(cfg: DictConfig) -> tuple:
    from actlab.train import act_params

    return cfg.activation.name, tuple(sorted((k, repr(v)) for k, v in act_params(cfg).items()))


# ------------------------------------------------------------------------------------------------
# the stacked model

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


class StackedAct(nn.Module):
    """One hidden activation layer of K models. Models come in groups (consecutive slices) that
    share an activation; a stateless activation module is applied to its group's slice as is, a
    PReLU gets a stacked slope (k, n) applied per model."""

    def __init__(self, acts: list[nn.Module], groups: list[tuple[int, int]]):
        super().__init__()
        self.groups = groups
        self.fns = nn.ModuleList()
        self.slopes = nn.ParameterList()
        self.kinds: list[str] = []
        self.slope_index: list[int] = []  # group -> index into slopes (-1: none)
        for a, b in groups:
            first = acts[a]
            self.slope_index.append(len(self.slopes) if isinstance(first, nn.PReLU) else -1)
            if isinstance(first, nn.PReLU):
                self.kinds.append("prelu")
                self.slopes.append(nn.Parameter(torch.stack([m.weight.detach().clone() for m in acts[a:b]])))
                self.fns.append(nn.Identity())
            elif any(True for _ in first.parameters()):
                raise ValueError(f"cannot vectorise activation {type(first).__name__} with parameters")
            else:
                self.kinds.append("fn")
                self.fns.append(first)

    def _act(self, i: int, h: torch.Tensor) -> torch.Tensor:
        if self.kinds[i] == "prelu":
            a = self.slopes[self.slope_index[i]]
            # nn.PReLU: x if x > 0 else a * x (torch's gradient convention at 0: slope a)
            return torch.where(h > 0, h, a.unsqueeze(1) * h)
        return self.fns[i](h)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (K, B, W)
        if len(self.groups) == 1:
            return self._act(0, h)
        return torch.cat([self._act(i, h[a:b]) for i, (a, b) in enumerate(self.groups)], 0)

    def hand_backward(self) -> bool:
        """Whether every group is a PReLU or has a kernel in ACT_BACKWARD."""
        return all(kind == "prelu" or type(fn) in ACT_BACKWARD for kind, fn in zip(self.kinds, self.fns))

    def backward(self, dh: torch.Tensor, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, list]:
        """(dz, the gradients of self.slopes) from dh, the pre-activation z and the output h, all
        (K, B, W); needs hand_backward()."""
        parts, slope_grads = [], []
        for i, (a, b) in enumerate(self.groups):
            dh_g, z_g = dh[a:b], z[a:b]
            if self.kinds[i] == "prelu":  # forward: where(z > 0, z, slope * z), slope (k, 1 or W)
                slope = self.slopes[self.slope_index[i]]
                pos = z_g > 0
                parts.append(torch.where(pos, dh_g, slope.unsqueeze(1) * dh_g))
                ds = torch.where(pos, 0.0, dh_g * z_g).sum(1)  # (k, W)
                slope_grads.append(ds if slope.shape[1] == ds.shape[1] else ds.sum(1, keepdim=True))
            else:
                parts.append(ACT_BACKWARD[type(self.fns[i])](self.fns[i], dh_g, z_g, h[a:b]))
        return (parts[0] if len(parts) == 1 else torch.cat(parts, 0)), slope_grads

    def slope_of(self, k: int) -> torch.Tensor | None:
        """Model k's PReLU slope (a view), or None."""
        for i, (a, b) in enumerate(self.groups):
            if a <= k < b and self.slope_index[i] >= 0:
                return self.slopes[self.slope_index[i]][k - a]
        return None


class StackedMLP(nn.Module):
    """K `actlab.models.MLP`s as stacked tensors: weight i is (K, in, out) (nn.Linear's weight
    transposed: the forward is one bmm without a transpose, and autograd's gradient comes out in
    the parameter's own layout, so accumulating it is not a strided copy), bias i is (K, out)."""

    def __init__(self, nets: list[nn.Module], groups: list[tuple[int, int]]):
        super().__init__()
        self.k = len(nets)
        self.layer_names = list(models.weight_layers(nets[0]))  # fc1.., out
        self.act_names = list(models.activation_layers(nets[0]))  # act1..
        stack = lambda ts: nn.Parameter(torch.stack([t.detach().clone() for t in ts]))  # noqa: E731
        self.weights = nn.ParameterList(
            [stack([n.get_submodule(name).weight.t() for n in nets]) for name in self.layer_names]
        )
        self.biases = nn.ParameterList([stack([n.get_submodule(name).bias for n in nets]) for name in self.layer_names])
        self.acts = nn.ModuleList(
            [StackedAct([n.get_submodule(name) for n in nets], groups) for name in self.act_names]
        )

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """x: (K, B, *in) (one batch per model), or (B, *in) with shared=True (the same batch for
        every model: validation and test). Returns (K, B, out)."""
        n_layers = len(self.weights)
        if shared:
            # One GEMM for all K: (B, D) @ (D, K*H), no K-fold copy of the inputs.
            w, b = self.weights[0], self.biases[0]
            k, d, h_out = w.shape
            x2 = x.reshape(x.shape[0], -1)
            h = torch.mm(x2, w.transpose(0, 1).reshape(d, k * h_out)).view(-1, k, h_out).transpose(0, 1)
            h = h + b.unsqueeze(1)
            start = 1
        else:
            h = x.reshape(x.shape[0], x.shape[1], -1)
            start = 0
        for i in range(start, n_layers):
            if i > 0:
                h = self.acts[i - 1](h)
            h = torch.baddbmm(self.biases[i].unsqueeze(1), h, self.weights[i])
        return h

    def hand_backward(self) -> bool:
        """Whether losses_and_grads can train this stack (every activation is a PReLU or in ACT_BACKWARD)."""
        return all(a.hand_backward() for a in self.acts)

    @torch.no_grad()
    def losses_and_grads(self, x: torch.Tensor, y: torch.Tensor, task: str):
        """The training step's forward and backward without autograd: (losses (K,), correct (K,) or
        None, the gradients of losses.sum() in decay_groups() order). The same numbers as
        `per_model_losses(self(x), ...)` + `torch.autograd.grad` to rounding (tested); the autograd
        engine, its graph and ~15 of its ops per step cost ~7 % of a K=10 step on CPU.
        x (K, B, *in), y (K, B) class indices or (K, B, out) targets."""
        hs = [x.reshape(x.shape[0], x.shape[1], -1)]  # layer inputs (K, B, in_i)
        zs = []  # pre-activations of the hidden layers
        n = len(self.weights)
        for i in range(n):
            z = torch.baddbmm(self.biases[i].unsqueeze(1), hs[i], self.weights[i])
            if i < n - 1:
                zs.append(z)
                hs.append(self.acts[i](z))
        k, b = z.shape[:2]
        if task == "regression":
            diff = z - y
            losses = diff.pow(2).flatten(1).mean(1)
            d = diff.mul_(2.0 / diff[0].numel())  # d mean((z - y)^2) / dz, (K, B, out)
            correct = None
        else:
            lsm = torch.log_softmax(z.transpose(1, 2), 1)  # (K, C, B), as per_model_losses
            target = y.unsqueeze(1)  # (K, 1, B)
            losses = lsm.gather(1, target).squeeze(1).mean(1).neg_()
            correct = n_correct(z, y)
            d = lsm.exp_()  # softmax; d mean(CE) / dz = (softmax - onehot) / B
            d.scatter_add_(1, target, torch.full(target.shape, -1.0, dtype=d.dtype, device=d.device))
            d = d.mul_(1.0 / b).transpose(1, 2)  # (K, B, C)
        dws, dbs, dslopes = [None] * n, [None] * n, [[] for _ in self.acts]
        for i in reversed(range(n)):
            dws[i] = torch.bmm(hs[i].transpose(1, 2), d)
            dbs[i] = d.sum(1)
            if i > 0:
                dh = torch.bmm(d, self.weights[i].transpose(1, 2))
                d, dslopes[i - 1] = self.acts[i - 1].backward(dh, zs[i - 1], hs[i])
        return losses, correct, [*dws, *dbs, *(g for layer in dslopes for g in layer)]

    def decay_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(decayed, not decayed) as LitModel.configure_optimizers: weights, then biases + slopes."""
        return list(self.weights), [*self.biases, *(p for a in self.acts for p in a.slopes)]

    @torch.no_grad()
    def copy_into(self, k: int, net: nn.Module) -> nn.Module:
        """Copy model k's parameters into `net` (a `models.build()`-shaped module): a per-model view."""
        for i, name in enumerate(self.layer_names):
            layer = net.get_submodule(name)
            layer.weight.copy_(self.weights[i][k].t())
            layer.bias.copy_(self.biases[i][k])
        for name, act in zip(self.act_names, self.acts):
            slope = act.slope_of(k)
            if slope is not None:
                net.get_submodule(name).weight.copy_(slope)
        return net


class StackedNet(nn.Module):
    """K models of any architecture `models.build` makes (the CNN, 2-D and 1-D; the MLP too) as
    stacked parameters, each (K, *the model's own shape), run as one batched computation by
    `torch.func.vmap` over `torch.func.functional_call` (a convolution over K stacked weights becomes
    one grouped convolution). Models come in activation groups (consecutive slices); each group runs
    through its own template module (never registered: its own tensors are never used). The layers'
    parameters are stacked over all K (`params`); an activation's own (PReLU's slope) over its group
    only (`own[g]`)."""

    def __init__(self, nets: list[nn.Module], groups: list[tuple[int, int]]):
        super().__init__()
        self.k = len(nets)
        self.groups = groups
        self.layer_names = list(models.weight_layers(nets[0]))
        self.act_names = list(models.activation_layers(nets[0]))
        of = [dict(n.named_parameters()) for n in nets]
        firsts = [of[a] for a, _ in groups]
        self.names = [n for n in of[0] if all(n in f and f[n].shape == of[0][n].shape for f in firsts)]
        self.params = nn.ParameterList(
            [nn.Parameter(torch.stack([o[name].detach().clone() for o in of])) for name in self.names]
        )
        self.own_names = [[n for n in f if n not in self.names] for f in firsts]
        self.own = nn.ModuleList(
            nn.ParameterList([nn.Parameter(torch.stack([o[n].detach().clone() for o in of[a:b]])) for n in names])
            for (a, b), names in zip(groups, self.own_names)
        )
        self._templates = [nets[a] for a, _ in groups]  # a plain list: not a submodule
        wanted = {f"{n}.weight" for n in self.layer_names}
        self.weights = [p for n, p in zip(self.names, self.params) if n in wanted]  # weight_layers order
        self._decay = {id(p) for p in self.weights}

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """x: (K, B, *in) (one batch per model), or (B, *in) with shared=True. Returns (K, B, out)."""
        outs = []
        for g, ((a, b), template) in enumerate(zip(self.groups, self._templates)):

            def one(params: dict, xb: torch.Tensor, template=template) -> torch.Tensor:
                return torch.func.functional_call(template, params, (xb,))

            params = {n: p[a:b] for n, p in zip(self.names, self.params)}
            params.update(zip(self.own_names[g], self.own[g]))
            outs.append(torch.func.vmap(one, in_dims=(0, None if shared else 0))(params, x if shared else x[a:b]))
        return outs[0] if len(outs) == 1 else torch.cat(outs, 0)

    def hand_backward(self) -> bool:
        return False

    def decay_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(decayed, not decayed): the Linear/Conv weights; biases and activation parameters never."""
        rest = [p for p in self.params if id(p) not in self._decay]
        return list(self.weights), rest + [p for own in self.own for p in own]

    @torch.no_grad()
    def copy_into(self, k: int, net: nn.Module) -> nn.Module:
        """Copy model k's parameters into `net` (a `models.build()`-shaped module): a per-model view."""
        mine = dict(net.named_parameters())
        for name, p in zip(self.names, self.params):
            mine[name].copy_(p[k])
        g = next(i for i, (a, b) in enumerate(self.groups) if a <= k < b)
        for name, p in zip(self.own_names[g], self.own[g]):
            mine[name].copy_(p[k - self.groups[g][0]])
        return net


def stack(cfg: DictConfig, nets: list[nn.Module], groups: list[tuple[int, int]]) -> nn.Module:
    """The batched model of `nets`: the MLP's own stack (batched matmuls and a hand-written backward),
    any other model through vmap."""
    return StackedMLP(nets, groups) if cfg.model.name == "mlp" else StackedNet(nets, groups)


def per_model_losses(
    out: torch.Tensor, y: torch.Tensor, task: str, shared: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(K,) mean loss per model and (K,) correct count per model (None for regression).
    out (K, B, C); y (K, B) / (K, B, 1) per model, or (B,) / (B, 1) when shared."""
    k, b = out.shape[:2]
    if shared:
        y = y.unsqueeze(0).expand(k, *y.shape)
    if task == "regression":
        return (out - y).pow(2).flatten(1).mean(1), None
    # (K, C, B): the class dim is reduced across the contiguous batch dim (CPU log_softmax over a
    # last dim of 10 classes is ~3x slower than over dim 1 with 128 samples per vector run).
    losses = F.cross_entropy(out.transpose(1, 2), y, reduction="none").mean(1)
    return losses, n_correct(out, y)


def n_correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(K,) correct predictions per model; out (K, B, C), y (K, B). argmax's first-maximum rule, by
    max(-1).indices: 2.5x faster on CPU."""
    return (out.max(-1).indices == y).sum(1)


# ------------------------------------------------------------------------------------------------
# data


class StackedBatches:
    """Per-model shuffled index batches: chunks of up to `chunk` (K, B) index tensors on `device`.
    Model k's order is the one `IndexBatches(shuffle=True, seed=seeds[k])` draws, epoch by epoch."""

    def __init__(self, n: int, batch_size: int, seeds: list[int], chunk: int, device):
        self.n, self.batch_size, self.chunk, self.device = n, batch_size, max(1, int(chunk)), device
        self.gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.n_batches = math.ceil(n / batch_size)

    def state_dict(self) -> dict:
        """The K data-order generators' states (saved in a resume checkpoint between epochs)."""
        return {"generators": [g.get_state() for g in self.gens]}

    def load_state_dict(self, state: dict) -> None:
        for g, st in zip(self.gens, state["generators"], strict=True):
            g.set_state(st)

    def __len__(self) -> int:
        return math.ceil(self.n_batches / self.chunk)

    def __iter__(self):
        order = torch.stack([torch.randperm(self.n, generator=g) for g in self.gens]).to(self.device)
        b = self.batch_size
        for c in range(0, self.n_batches, self.chunk):
            yield [order[:, i * b : (i + 1) * b] for i in range(c, min(c + self.chunk, self.n_batches))]


class VecData(TensorData):
    """All splits on the device; training batches are per-model index chunks, evaluation batches are
    shared (every model is evaluated on the same contiguous slices, as TensorData does). Device
    placement, evaluation loaders and the data-order state in checkpoints come from TensorData."""

    def __init__(self, splits: Splits, batch_size: int, seeds: list[int], chunk: int, eval_batch_size: int = 4096):
        super().__init__(splits, batch_size, seeds[0], eval_batch_size)
        self.seeds, self.chunk = seeds, chunk

    def train_dataloader(self):
        self._train = StackedBatches(
            len(self.splits.x_train), self.batch_size, self.seeds, self.chunk, self.splits.x_train.device
        )
        if self._train_state is not None:
            self._train.load_state_dict(self._train_state)
        return self._train


# ------------------------------------------------------------------------------------------------
# the LightningModule


def _keep_freed_memory() -> None:
    """glibc: serve large allocations from the heap and keep freed memory (instead of an mmap and
    page faults every step for each multi-MB gradient: ~15% of a K=10 step on CPU). Process-wide;
    costs at most the retained heap. No-op where glibc's mallopt is unavailable."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

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
        if not isinstance(opt, torch.optim.Adam) or opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks:
            return False
        from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

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


class VecLitModel(pl.LightningModule):
    """K stacked models, their losses and one optimizer; manual optimisation, `chunk` steps a call."""

    def __init__(
        self,
        net: nn.Module,
        task: str,
        optim_cfg,
        max_epochs: int,
        grad_flow_every: int | None = None,
        compile: bool = False,
    ):
        super().__init__()
        self.net, self.task, self.optim_cfg, self.max_epochs = net, task, optim_cfg, max_epochs
        self.automatic_optimization = False
        self.k = net.k
        self.grad_flow_every = grad_flow_every
        self.step_count = 0  # optimizer steps, as GradFlow counts them
        self.grad_flow: list[tuple[int, int, torch.Tensor]] = []  # (step, epoch, (4, L, K)) this epoch
        self.last_step_stats: tuple[int, int, torch.Tensor] | None = None
        self.compiled = compile
        self._loss_fn = torch.compile(self._losses, dynamic=False) if compile else self._losses
        self._sums: dict[str, list] = {}
        self._reset("train"), self._reset("val"), self._reset("test")
        self.epoch_means: dict[str, torch.Tensor] = {}

    # Metric accumulators, on the device (no host sync per step): per stage, [sum of loss x batch size
    # (K,), number correct (K,), samples]. A plain dict: nn.Module.__setattr__ costs microseconds.
    def _reset(self, stage: str) -> None:
        self._sums[stage] = [None, None, 0]  # (+ the means' dtype once the first batch is in)

    def _accumulate(self, stage: str, losses: torch.Tensor, correct: torch.Tensor | None, b: int) -> None:
        sums = self._sums[stage]
        if sums[0] is None:
            # float64 sums on CPU; on a GPU the losses' dtype (float64 under 64-true), at least float32
            dtype = torch.float64 if losses.device.type == "cpu" else torch.promote_types(losses.dtype, torch.float32)
            sums[0], sums[1] = (torch.zeros(self.k, dtype=dtype, device=losses.device) for _ in range(2))
            sums.append(torch.promote_types(losses.dtype, torch.float32))  # the means' dtype (see _finish)
            if correct is None:
                sums[1].fill_(math.nan)
        sums[0].add_(losses.detach(), alpha=b)
        if correct is not None:
            sums[1].add_(correct)
        sums[2] += b

    def _finish(self, stage: str) -> None:
        loss, correct, n, *dtype = self._sums[stage]
        if loss is not None:
            # (2, K): mean loss, accuracy; rounded to the models' dtype as Lightning's means of a single
            # run are (float32 runs: float32; 64-true: float64, never rounded to float32)
            self.epoch_means[stage] = (torch.stack([loss, correct]) / n).to(dtype[0])
        self._reset(stage)

    def _losses(self, x, y, shared: bool):
        return per_model_losses(self.net(x, shared=shared), y, self.task, shared)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["step_count"] = self.step_count

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.step_count = int(checkpoint["step_count"])

    def on_fit_start(self) -> None:
        if self.device.type == "cpu":
            _keep_freed_memory()
        dm = self.trainer.datamodule
        self._x, self._y = dm.splits.x_train, dm.splits.y_train
        self._steps_per_epoch = math.ceil(len(self._x) / dm.batch_size)
        self._params = [p for ps in self.net.decay_groups() for p in ps]  # weights first
        self._step = DirectStep(self.optimizers().optimizer, self._params)
        # The hand-written backward where it applies: fp32 or fp64 (autocast would change the ops' dtypes),
        # not compiled, every activation in ACT_BACKWARD. Otherwise autograd.
        self._hand = (
            self.net.hand_backward()
            and not self.compiled
            and str(self.trainer.precision) in ("32-true", "32", "64-true", "64")
        )

    def training_step(self, batch, batch_idx):
        epoch = self.current_epoch + 1
        n_weights = len(self.net.weights)
        s = self.step_count
        for idx in batch:  # (K, b) indices, one row per model
            k, b = idx.shape
            flat = idx.reshape(-1)
            x = torch.index_select(self._x, 0, flat).view(k, b, *self._x.shape[1:])
            y = torch.index_select(self._y, 0, flat).view(k, b, *self._y.shape[1:])
            if self._hand:
                losses, correct, grads = self.net.losses_and_grads(x, y, self.task)
            else:
                losses, correct = self._loss_fn(x, y, False)
                # Plain gradients: single device, and no loss scaling (fp16 is refused by supported()).
                grads = torch.autograd.grad(losses.sum(), self._params)
            s += 1
            record = self.grad_flow_every is not None and (
                s == 1 or s % self.grad_flow_every == 0 or s % self._steps_per_epoch == 0
            )
            if record:
                before = [w.detach().clone() for w in self.net.weights]
                g2 = torch.stack([g.flatten(1).norm(dim=1) for g in grads[:n_weights]])  # (L, K)
                g1 = torch.stack([g.flatten(1).abs().sum(1) / g[0].numel() for g in grads[:n_weights]])
            self._step(grads)
            if record:
                w2 = torch.stack([w.flatten(1).norm(dim=1) for w in before])
                dw = torch.stack([(w.detach() - w0).flatten(1).norm(dim=1) for w, w0 in zip(self.net.weights, before)])
                rms = torch.stack([n / g[0].numel() ** 0.5 for n, g in zip(g2, grads[:n_weights])])  # (L, K)
                stats = torch.stack([g2, g1, w2, dw / w2, rms])  # (5, L, K), GRAD_METRICS order
                if s == 1 or s % self.grad_flow_every == 0:
                    self.grad_flow.append((s, epoch, stats))
                if s % self._steps_per_epoch == 0:
                    self.last_step_stats = (s, epoch, stats)
            self._accumulate("train", losses, correct, b)
        self.step_count = s

    def on_train_epoch_start(self) -> None:
        self._reset("train")
        self.grad_flow = []

    def _eval_step(self, stage: str, batch) -> None:
        x, y = batch  # one shared batch for all K models
        losses, correct = self._losses(x, y, True)
        self._accumulate(stage, losses, correct, len(x))

    def validation_step(self, batch, batch_idx):
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def test_step(self, batch, batch_idx):
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def finish_train_epoch(self) -> None:
        self._finish("train")

    def on_train_epoch_end(self) -> None:
        # after the callbacks (VecRecorder read this epoch's metrics at the same lr): the epoch schedule
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()

    def configure_optimizers(self):
        cfg = self.optim_cfg
        decay, no_decay = self.net.decay_groups()
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if not cfg.weight_decay:  # the same hyperparameters: one group = one fused kernel call per step
            groups = [{"params": decay + no_decay, "weight_decay": 0.0}]
        dev = decay[0].device.type
        # Fused kernels: one pass over the stacked tensors (CPU and CUDA; float32 and float64, the
        # dtypes Lightning has converted the parameters to by now); elementwise, as per model.
        fused = {"fused": True} if dev in ("cpu", "cuda") and decay[0].dtype in (torch.float32, torch.float64) else {}
        return make_optimizer(groups, cfg, self.max_epochs, **fused)


# ------------------------------------------------------------------------------------------------
# per-model outputs: metrics.csv, divergence, probes


class _View:
    """What a probe callback needs of a pl_module: `.model` (model k as a plain module), `.device`."""

    def __init__(self, model: nn.Module, device):
        self.model, self.device = model, device


class VecRecorder(pl.Callback):
    """Per-model metrics.csv rows, divergence, and the probes of every model, at each epoch end."""

    def __init__(self, cfgs: list[DictConfig], views: list[nn.Module], quiet: bool, chance: float):
        self.cfgs, self.views, self.quiet, self.chance = cfgs, views, quiet, chance
        self.k = len(cfgs)
        self.rows: list[list[dict]] = [[] for _ in cfgs]
        self.active = [True] * self.k
        self.diverged = [False] * self.k
        self.finished = [False] * self.k
        self.epoch_probes: list[list[pl.Callback]] = []
        # Each model's GradFlow keeps its rows and writes its table; its statistics come from the
        # stacked step (VecLitModel), not from its own hooks.
        self.grad_flow: list[probes.GradFlow | None] = []
        for c in cfgs:
            cbs = probes.callbacks(c.probes, Path(c.run_dir), c.activation.name)
            gf = [cb for cb in cbs if isinstance(cb, probes.GradFlow)]
            self.epoch_probes.append([cb for cb in cbs if not isinstance(cb, probes.GradFlow)])
            self.grad_flow.append(gf[0] if gf else None)

    # Everything recorded so far travels in a resume checkpoint: rows, divergence, the probes' rows.
    def state_dict(self) -> dict:
        return {
            "rows": [[dict(r) for r in rows] for rows in self.rows],
            "active": list(self.active),
            "diverged": list(self.diverged),
            "finished": list(self.finished),
            "grad_flow": [
                None if g is None else {"rows": [dict(r) for r in g.rows], "recorded": g.recorded}
                for g in self.grad_flow
            ],
            "epoch_probes": [[cb.state_dict() for cb in cbs] for cbs in self.epoch_probes],
        }

    def load_state_dict(self, state: dict) -> None:
        if len(state["rows"]) != self.k:
            raise ValueError(f"checkpoint holds {len(state['rows'])} models, this run {self.k}")
        self.rows = [[dict(r) for r in rows] for rows in state["rows"]]
        self.active, self.diverged = list(state["active"]), list(state["diverged"])
        self.finished = list(state["finished"])
        for g, saved in zip(self.grad_flow, state["grad_flow"]):
            if g is not None and saved is not None:
                g.rows, g.recorded = [dict(r) for r in saved["rows"]], int(saved["recorded"])
        for cbs, saved in zip(self.epoch_probes, state["epoch_probes"]):
            for cb, st in zip(cbs, saved):
                cb.load_state_dict(st)

    def grad_flow_every(self) -> int | None:
        everies = {g.every for g in self.grad_flow if g is not None}
        if len(everies) > 1:
            raise ValueError("vectorised models must share probes.grad_flow.every_n_steps")
        return everies.pop() if everies else None

    def _view(self, k: int, pl_module) -> _View:
        # in the stacked model's dtype (float64 under 64-true: a float32 view would round the weights)
        view = self.views[k].to(pl_module.device, pl_module.dtype)
        return _View(pl_module.net.copy_into(k, view), pl_module.device)

    def on_train_start(self, trainer, pl_module):
        for k in range(self.k):
            for cb in self.epoch_probes[k]:
                cb.on_train_start(trainer, self._view(k, pl_module))

    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.finish_train_epoch()
        epoch = trainer.current_epoch + 1
        seconds = (time.perf_counter() - self._t0) / self.k  # each model's share of the epoch
        nan = torch.full((2, self.k), math.nan, device=pl_module.device)
        tr, va = pl_module.epoch_means.get("train", nan), pl_module.epoch_means.pop("val", nan)
        # the one host sync of the epoch: metrics and the grad-flow statistics of every model
        gf_steps = pl_module.grad_flow
        gf = torch.stack([s for _, _, s in gf_steps]) if gf_steps else None
        last = pl_module.last_step_stats
        host = torch.cat([tr, va]).double().cpu().tolist()
        gf_host = gf.double().cpu() if gf is not None else None
        last_host = (last[0], last[1], last[2].double().cpu()) if last is not None else None
        done_now = []
        for k in range(self.k):
            if not self.active[k]:
                continue
            row = {
                "epoch": epoch,
                "train_loss": host[0][k],
                "train_acc": host[1][k],
                "val_loss": host[2][k],
                "val_acc": host[3][k],
                "seconds": seconds,
            }
            self.rows[k].append(row)
            atomic.write_csv(Path(self.cfgs[k].run_dir) / "metrics.csv", pd.DataFrame(self.rows[k]))
            if self.k == 1 and trainer.logger is not None:
                trainer.logger.log_metrics({m: v for m, v in row.items() if m != "epoch"}, step=epoch)
            if diverged(row["train_loss"], self.chance):  # the single run's rule (actlab.callbacks)
                self.diverged[k] = True
                self.active[k] = False
                done_now.append(k)
            for cb in self.epoch_probes[k]:
                cb.on_train_epoch_end(trainer, self._view(k, pl_module))
            g = self.grad_flow[k]
            if g is not None:
                for (s, e, _), stats in zip(gf_steps, gf_host if gf_host is not None else []):
                    g.add_rows(s, e, self.layer_names, stats[..., k])  # stats (4, L, K)
                g.flush(force=False)
        for k in done_now:  # a diverged model ends here, as its single run would
            self._finish_model(k, trainer, pl_module, last_host)
        if self.quiet and self.k == 1:
            r = self.rows[0][-1]
            print(
                f"epoch {epoch:>3}  train_loss {r['train_loss']:.4f}  val_loss {r['val_loss']:.4f}"
                f"  val_acc {r['val_acc']:.4f}  {seconds:.2f}s",
                flush=True,
            )
        elif self.quiet:
            live = [k for k in range(self.k) if self.active[k] or k in done_now]
            tl = [host[0][k] for k in live]
            va_acc = [host[3][k] for k in live]
            print(
                f"epoch {epoch:>3}  K={self.k}  train_loss {min(tl):.4f}..{max(tl):.4f}"
                f"  val_acc {min(va_acc):.4f}..{max(va_acc):.4f}  diverged {sum(self.diverged)}"
                f"  {seconds:.2f}s/model",
                flush=True,
            )
            self._progress(epoch, trainer.max_epochs)
        if not any(self.active):
            trainer.should_stop = True
        self._last_host = last_host

    PROGRESS_EVERY = 15.0  # seconds between progress lines on stderr (the pipeline's terminal)

    def _progress(self, epoch: int, max_epochs: int) -> None:
        """A line with the time left on stderr, at most every PROGRESS_EVERY s and at the last epoch:
        a long vectorised job shows that it moves (the per-epoch lines above go to the job's log)."""
        now = time.perf_counter()
        if not hasattr(self, "_since"):  # (time, epoch) this process started from (a resume starts late)
            self._since, self._said = (self._t0, epoch - 1), self._t0
        if epoch < max_epochs and now - self._said < self.PROGRESS_EVERY:
            return
        self._said = now
        (t0, e0) = self._since
        left = (now - t0) / max(epoch - e0, 1) * (max_epochs - epoch)
        where = Path(self.cfgs[0].run_dir).parent.parent
        print(
            f"train {where}: {self.k} runs, epoch {epoch}/{max_epochs}, ~{left:.0f} s left", file=sys.stderr, flush=True
        )

    def on_train_end(self, trainer, pl_module):
        for k in range(self.k):
            if not self.finished[k]:
                self._finish_model(k, trainer, pl_module, getattr(self, "_last_host", None))

    def _finish_model(self, k, trainer, pl_module, last_host) -> None:
        for cb in self.epoch_probes[k]:
            cb.on_train_end(trainer, self._view(k, pl_module))
        g = self.grad_flow[k]
        if g is not None:
            if last_host is not None and last_host[0] > g.recorded:
                step, epoch, stats = last_host
                g.add_rows(step, epoch, self.layer_names, stats[..., k])
            g.flush(force=True)
        self.finished[k] = True


# ------------------------------------------------------------------------------------------------
# the run


def fit_many(
    cfgs: list[DictConfig], checkpoint: Path | None = None, splits: Splits | None = None, job: bool = True
) -> list[dict]:
    """Train the models of `cfgs` (same config but for seed, run_dir and activation) in one
    vectorised Lightning run; write each model's run dir; return the summaries in cfgs' order.

    ``checkpoint``: where the stacked resume checkpoint of all the models goes (actlab.train puts it
    in the job's hydra.run.dir); resumed from when it holds a checkpoint of exactly these configs.
    Left in place (the caller deletes it when the whole job is done). None: no checkpoints.
    ``splits``: the data of the configs' ``data``, already loaded (else loaded here). ``job``: the runs
    are (part of) a job of several runs, recorded in each summary's ``vectorized``; False for a run
    alone (`actlab.train.run`), whose summary is the single run's."""
    from actlab.train import act_params, check_writable, make_summary, resume_checkpoint, setup_runtime, validate

    for c in cfgs:
        validate(c)
        ok, why = supported(c)
        if not ok:
            from actlab.train import ConfigError

            raise ConfigError(f"cannot vectorise: {why}")
    check_compatible(cfgs)
    # Models sharing an activation are made adjacent, so each activation runs on one slice.
    order = sorted(range(len(cfgs)), key=lambda i: (_act_key(cfgs[i]), i))
    groups = consecutive_groups([_act_key(cfgs[i]) for i in order])
    cfgs_s = [cfgs[i] for i in order]
    cfg0 = cfgs_s[0]

    if splits is None:
        splits = data.load(cfg0.data)  # verified before anything is written: bad data leaves no run behind
    try:  # a model that cannot take this data's input shape: one line, before any file
        models.build(cfg0.model, splits.in_shape, splits.num_outputs, cfg0.activation.name, act_params(cfg0))
    except ValueError as e:
        from actlab.train import ConfigError

        raise ConfigError(f"model={cfg0.model.name} cannot train on data={cfg0.data.name}: {e}") from None
    for c in cfgs_s:
        run_dir = Path(c.run_dir)
        check_writable(run_dir)
        (run_dir / "summary.json").unlink(missing_ok=True)
        atomic.write_text(run_dir / "config.yaml", OmegaConf.to_yaml(c, resolve=True), durable=False)

    tr = cfg0.trainer
    quiet = setup_runtime(tr)

    nets = []
    for c in cfgs_s:  # each model's initialisation, exactly as its single run draws it
        pl.seed_everything(c.seed, workers=True, verbose=False)
        nets.append(models.build(c.model, splits.in_shape, splits.num_outputs, c.activation.name, act_params(c)))
    views = nets  # the per-model modules double as the probes' views (refreshed before each use)
    net = stack(cfg0, nets, groups)
    recorder = VecRecorder(cfgs_s, views, quiet, chance_loss(splits.task, splits.y_train, splits.num_outputs))
    recorder.layer_names = net.layer_names
    chunk = int(tr.get("steps_per_call") or 1)
    lit = VecLitModel(
        net, splits.task, cfg0.optimizer, tr.max_epochs, recorder.grad_flow_every(), compile=bool(tr.get("compile"))
    )
    dm = VecData(splits, cfg0.data.batch_size, [int(c.seed) for c in cfgs_s], chunk)
    ckpt_cb, ckpt_path = (
        (None, None)
        if checkpoint is None
        else resume_checkpoint(cfgs_s, Path(checkpoint), f"{len(cfgs_s)} vectorised models")
    )
    logger = False
    if len(cfgs_s) == 1:  # one run: Lightning's own log of its epoch metrics in <run_dir>/logs/ (VecRecorder)
        kind = pl.loggers.TensorBoardLogger if tr.get("logger") == "tensorboard" else pl.loggers.CSVLogger
        logger = kind(save_dir=str(cfg0.run_dir), name="logs", version="")
    trainer = pl.Trainer(
        accelerator="auto" if cfg0.device == "auto" else cfg0.device,
        devices=1,
        max_epochs=tr.max_epochs,
        deterministic=tr.deterministic,
        precision=tr.precision,
        logger=logger,
        callbacks=[recorder, *([ckpt_cb] if ckpt_cb else [])],
        enable_progress_bar=not quiet,
        enable_model_summary=not quiet,
        enable_checkpointing=ckpt_cb is not None,
        num_sanity_val_steps=0,
        default_root_dir=str(Path(cfg0.run_dir) if len(cfgs_s) == 1 else Path(cfg0.run_dir).parent),
    )
    for v in views:
        v.to(trainer.strategy.root_device)
    log.info(
        "vectorised run: %d models (%s) on %s",
        len(cfgs_s),
        ", ".join(f"{c.activation.name}/seed{c.seed}" for c in cfgs_s),
        trainer.strategy.root_device,
    )
    t0 = time.perf_counter()
    trainer.fit(lit, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    train_seconds = ckpt_cb.train_seconds() if ckpt_cb else time.perf_counter() - t0
    test = None
    if not all(recorder.diverged):
        trainer.test(lit, datamodule=dm, verbose=False)
        test = lit.epoch_means["test"].double().cpu().tolist()

    device = str(trainer.strategy.root_device)
    summaries = []
    for k, c in enumerate(cfgs_s):
        t = {} if recorder.diverged[k] or test is None else {"test_loss": test[0][k], "test_acc": test[1][k]}
        if splits.task == "regression":
            t.pop("test_acc", None)
        s = make_summary(
            c,
            splits.task,
            recorder.rows[k],
            t,
            recorder.diverged[k],
            train_seconds / len(cfgs),
            sum(p.numel() for p in nets[k].parameters()),
            device,
            resumed_from_epoch=ckpt_cb.resumed_from if ckpt_cb else 0,
            data_provenance=splits.provenance,
        )
        if job:  # how the job ran; a run alone (K=1) has the single run's summary
            s["vectorized"] = {"k": len(cfgs), "job_train_seconds": train_seconds}
        integrity.write_summary(c.run_dir, s)  # SHA256SUMS of the run's files, then summary.json, last
        summaries.append(s)
    back = [None] * len(cfgs)
    for pos, i in enumerate(order):
        back[i] = summaries[pos]
    return back
