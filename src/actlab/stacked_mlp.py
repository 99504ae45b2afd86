"""K MLPs of one shape as stacked tensors: batched matmuls forward, and a hand-written backward.

Every Linear layer of the K models holds a (K, in, out) weight and runs as one `torch.baddbmm`; the
backward (losses_and_grads) uses autograd's own activation kernels (actlab.fastpaths.ACT_BACKWARD)
and is tested against autograd; where a kernel is missing the engine uses autograd.
"""

from __future__ import annotations

import torch
from torch import nn

from actlab import fastpaths, models
from actlab.losses import n_correct


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
        return fastpaths.USE["act_backward"] and all(
            kind == "prelu" or type(fn) in fastpaths.ACT_BACKWARD for kind, fn in zip(self.kinds, self.fns)
        )

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
                parts.append(fastpaths.ACT_BACKWARD[type(self.fns[i])](self.fns[i], dh_g, z_g, h[a:b]))
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
        """(decayed, not decayed) for actlab.optim.configure: weights, then biases + slopes."""
        return list(self.weights), [*self.biases, *(p for a in self.acts for p in a.slopes)]

    def param_rows(self) -> list[tuple[int, int]]:
        """The models (a, b) that dim 0 of each decay_groups() parameter holds, in that order: the
        weights and biases all K, a PReLU slope its activation group's."""
        own = [(a, b) for act in self.acts for i, (a, b) in enumerate(act.groups) if act.slope_index[i] >= 0]
        return [(0, self.k)] * (2 * len(self.weights)) + own

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
