"""The tutorials' formula errors, checked by code (the page errata.md shows what this computes).

Each erratum evaluates the formula as a tutorial states it against what the definition gives, with
autograd (float64) as the judge of every derivative. Nothing here reads the study's results except
`dead_units_in_study`, so the page's numbers do not depend on the sweep.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from actlab import activations as A

DYING_STEPS = 200  # SGD steps of the dying-unit demonstration: the ReLU unit's weights never move
GRID = torch.linspace(-4.0, 4.0, 8001, dtype=torch.float64)  # step 1e-3; 0 is a grid point


def autograd_derivative(module: nn.Module, x: torch.Tensor = GRID) -> torch.Tensor:
    """f'(x) by autograd through the module itself, elementwise (f acts elementwise, so the gradient
    of f(x).sum() is f'(x))."""
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(module.double()(x).sum(), x)
    return g.detach()


def elu_alpha() -> dict:
    """ "α is usually 0.01": the paper (Clevert et al.), torch and Keras all use α = 1.
    What α = 0.01 would do: E[ELU(z)] for z ~ N(0, 1) (ELU's point is a mean activation near 0),
    in closed form: E[z; z > 0] + α(e^{1/2} Φ(−1) − Φ(0)) = φ(0) + α(√e Φ(−1) − 1/2)."""
    phi0 = 1 / math.sqrt(2 * math.pi)
    big_phi_m1 = 0.5 * math.erfc(1 / math.sqrt(2))

    def mean(alpha: float) -> float:
        return phi0 + alpha * (math.exp(0.5) * big_phi_m1 - 0.5)

    return {
        "torch_default": nn.ELU().alpha,
        "registry_default": A.build("elu").alpha,
        "mean_alpha_1": mean(1.0),
        "mean_alpha_001": mean(0.01),
        "mean_relu": phi0,
        "kink_alpha_001": 1 - 0.01,
    }  # f'(0+) − f'(0−) = 1 − α: C¹ only for α = 1


def elu_gradient(alpha: float = 1.0) -> dict:
    """ELU's gradient for x < 0 stated as α(eˣ − 1): that is the value f(x); f'(x) = αeˣ. The stated
    formula is off by exactly α at every negative x, and has the wrong sign."""
    x = GRID[GRID < 0]
    true = autograd_derivative(nn.ELU(alpha), x)
    stated = alpha * (torch.exp(x) - 1)
    err = (stated - true).abs()
    at = torch.tensor([-1.0], dtype=torch.float64)
    return {
        "x": x,
        "true": true,
        "stated": stated,
        "max_abs_error": err.max().item(),
        "min_abs_error": err.min().item(),
        "stated_at_m1": (alpha * (math.exp(-1) - 1)),
        "true_at_m1": autograd_derivative(nn.ELU(alpha), at).item(),
        "closed_form_error": (true - A.build("elu", alpha=alpha).double()(x) - alpha).abs().max().item(),
    }


def leaky_derivative(a: float = 0.01) -> dict:
    """Leaky ReLU's derivative "derived" as a·sign(x − 1); it is 1 for x > 0 and a for x < 0."""
    x = GRID[GRID != 0]  # f is not differentiable at 0
    true = autograd_derivative(nn.LeakyReLU(a), x)
    stated = a * torch.sign(x - 1)
    wrong = (stated - true).abs() > 1e-12
    return {
        "x": x,
        "true": true,
        "stated": stated,
        "fraction_wrong": wrong.double().mean().item(),
        "max_abs_error": (stated - true).abs().max().item(),
        "stated_at_half": a * math.copysign(1, 0.5 - 1),
        "true_at_half": 1.0,
    }


def dying_relu_unit(steps: int = DYING_STEPS, lr: float = 0.1, seed: int = 0) -> dict:
    """ "ReLU can effectively prevent dead neurons": a unit whose pre-activation is negative on every
    input gets a zero gradient through ReLU and never moves again; through Leaky ReLU it does.
    One unit, 256 standard-normal 4-D inputs, bias −5 (every z < 0 here), target y = x·1, MSE, SGD."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 4, generator=g, dtype=torch.float64)
    y = x.sum(1, keepdim=True)
    out = {}
    for name in ("relu", "leaky_relu"):
        unit = nn.Linear(4, 1).double()
        with torch.no_grad():
            unit.weight.copy_(torch.full((1, 4), 0.5, dtype=torch.float64))
            unit.bias.fill_(-5.0)
        head = nn.Linear(1, 1).double()
        with torch.no_grad():
            head.weight.fill_(1.0), head.bias.zero_()
        act = A.build(name).double()
        w0 = unit.weight.detach().clone()
        opt = torch.optim.SGD([*unit.parameters(), *head.parameters()], lr=lr)
        first_grad = None
        for _ in range(steps):
            opt.zero_grad()
            loss = ((head(act(unit(x))) - y) ** 2).mean()
            loss.backward()
            if first_grad is None:
                first_grad = unit.weight.grad.norm().item()
            opt.step()
        with torch.no_grad():
            z = unit(x)
        out[name] = {
            "negative_fraction": (z < 0).double().mean().item(),
            "first_grad": first_grad,
            "weight_change": (unit.weight.detach() - w0).norm().item(),
            "final_loss": loss.item(),
        }
    return out


def keras_prelu() -> dict:
    """`Dense(..., activation='prelu')`: Keras has no activation function of that name (PReLU has a
    learned slope, so it is a layer, `keras.layers.PReLU`). Asked of Keras itself (torch backend)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras  # noqa: PLC0415  (imported here: ~10 s, only for this page)

    try:
        keras.layers.Dense(4, activation="prelu")
        error = None
    except ValueError as e:
        error = str(e).splitlines()[0]
    return {
        "version": keras.__version__,
        "error": error,
        "layer": "keras.layers.PReLU",
        "elu_alpha": keras.layers.ELU().alpha,
    }
