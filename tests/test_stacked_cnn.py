"""The stacked CNN (actlab.stacked_cnn, grouped convolutions without vmap): each model's outputs are its
own module's, its gradients vmap's, in float64, for every activation, 2-D and 1-D, per-model and
shared batches; and the optimizer step takes gradients in any layout (DirectStep)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch import nn

from actlab import activations, fastpaths, fit, models
from actlab.losses import per_model_losses
from actlab.stacked_vmap import StackedNet

CFG = OmegaConf.create({"name": "cnn", "depth": 2, "width": 4, "fc_width": 8, "init": None})


def _nets(shape, acts: list[tuple[str, dict]], per: int = 2):
    """`per` models of each (activation, params), PReLU slopes drawn around 0 (both signs matter)."""
    nets, groups = [], []
    for g, (name, params) in enumerate(acts):
        start = len(nets)
        for s in range(per):
            pl.seed_everything(10 * g + s, verbose=False)
            net = models.build(CFG, shape, 5, name, params).double()
            for m in net.modules():
                if isinstance(m, nn.PReLU):
                    nn.init.uniform_(m.weight, -0.5, 0.5)
            nets.append(net)
        groups.append((start, len(nets)))
    return nets, groups


ALL = [(a, {}) for a in activations.NAMES] + [("prelu", {"mode": "layer"})]


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 9, 8), (40,), (2, 12)])
@pytest.mark.parametrize("acts", [[("relu", {})], [("prelu", {})], ALL], ids=["relu", "prelu", "all"])
def test_stacked_cnn_is_each_models_module(shape, acts):
    nets, groups = _nets(shape, acts)
    net = fit.stack("cnn", nets, groups)
    vmap = StackedNet(nets, groups, explicit=False)
    assert net._steps is not None and vmap._steps is None
    k = len(nets)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(k, 6, *shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (k, 6), generator=g)
    out = net(x)
    torch.testing.assert_close(out, torch.stack([n(x[i]) for i, n in enumerate(nets)]), rtol=1e-12, atol=1e-12)
    shared = net(x[0], shared=True)
    torch.testing.assert_close(shared, torch.stack([n(x[0]) for n in nets]), rtol=1e-12, atol=1e-12)
    grads = [
        torch.autograd.grad(per_model_losses(s(x), y, "classification", False)[0].sum(), [*s.parameters()])
        for s in (net, vmap)
    ]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


def test_an_activation_it_cannot_vouch_for_goes_through_vmap():
    class Odd(nn.Module):  # not known to be elementwise
        def forward(self, x):
            return torch.relu(x)

    nets, groups = _nets((1, 8, 8), [("relu", {})])
    assert fit.stack("cnn", nets, groups)._steps is not None
    nets[0].act1 = Odd()
    assert fit.stack("cnn", nets, groups)._steps is None


@pytest.mark.parametrize("fused", [True, False])
def test_direct_step_takes_gradients_in_any_layout(fused):
    """Fused CPU Adam would update a transposed (or channels-last) gradient wrongly from the 2nd step."""
    ps = [nn.Parameter(torch.zeros(4, 3, 2)) for _ in range(2)]
    opts = [torch.optim.Adam([p], lr=0.1, fused=fused) for p in ps]
    steps = [fastpaths.DirectStep(o, [p]) for o, p in zip(opts, ps)]
    for i in range(3):
        g = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(i)).transpose(1, 2)
        steps[0]([g])
        steps[1]([g.contiguous()])
    assert torch.equal(ps[0], ps[1])
