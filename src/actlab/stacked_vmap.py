"""K models of any architecture as one batched computation: actlab.stacked_cnn for the CNN, else
torch.func.vmap over functional_call."""

from __future__ import annotations

import torch
from torch import nn

from actlab import models, stacked_cnn


class StackedNet(nn.Module):
    """K models of any architecture `models.build` makes (the CNN, 2-D and 1-D; the MLP too) as
    stacked parameters, each (K, *the model's own shape), run as one batched computation: the CNN by
    actlab.stacked_cnn (grouped convolutions, no vmap), any other by `torch.func.vmap` over
    `torch.func.functional_call`. Models come in activation groups (consecutive slices); each group runs
    through its own template module (never registered: its own tensors are never used). The layers'
    parameters are stacked over all K (`params`); an activation's own (PReLU's slope) over its group
    only (`own[g]`)."""

    def __init__(self, nets: list[nn.Module], groups: list[tuple[int, int]], explicit: bool = True):
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
        # The CNN runs explicitly (actlab.stacked_cnn: grouped convolutions, batched matmuls) where every group's
        # template is one it can run; anything else (or explicit=False: benchmarks/bench_train.py's
        # "before" arm) through vmap. The parameters, and so checkpoints and probes, are the same either way.
        plans = [stacked_cnn.plan(t) for t in self._templates]
        self._steps = plans[0] if explicit and all(p is not None for p in plans) else None

    def _cnn_acts(self) -> dict[str, tuple[list[nn.Module], list]]:
        """Per activation layer: each group's template module and its PReLU slope (k, C or 1), or None."""
        out = {}
        params = dict(zip(self.names, self.params))
        for name in self.act_names:
            fns, slopes = [], []
            for g, ((a, b), template) in enumerate(zip(self.groups, self._templates)):
                fn = template.get_submodule(name)
                key = f"{name}.weight"
                own = dict(zip(self.own_names[g], self.own[g]))
                slope = None
                if isinstance(fn, nn.PReLU):  # its own (the group's) or stacked with every model's
                    slope = own[key] if key in own else params[key][a:b]
                fns.append(fn)
                slopes.append(slope)
            out[name] = (fns, slopes)
        return out

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """x: (K, B, *in) (one batch per model), or (B, *in) with shared=True. Returns (K, B, out)."""
        if self._steps is not None:
            params = dict(zip(self.names, self.params))
            return stacked_cnn.forward(self._steps, params, self._cnn_acts(), self.groups, self.k, x, shared)
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

    def param_rows(self) -> list[tuple[int, int]]:
        """The models (a, b) that dim 0 of each decay_groups() parameter holds, in that order: the
        layers' parameters all K, an activation's own its group's."""
        decay, rest = self.decay_groups()
        own = [self.groups[g] for g, ps in enumerate(self.own) for _ in ps]
        return [(0, self.k)] * (len(decay) + len(rest) - len(own)) + own

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
