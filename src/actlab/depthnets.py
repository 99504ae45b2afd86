"""Deep, narrow MLPs on a 1-D input, T of them at once as stacked tensors: their parameters drawn
(He or RAI init), their forward pass, and the exact test of whether a net is a constant function on D.
The networks of the depth study (``python -m actlab.depth``; Lu, Shin, Su & Karniadakis, "Dying ReLU
and Initialization: Theory and Numerical Examples", Commun. Comput. Phys. 28(5), 2020; arXiv:1903.06733).

Network: x (scalar) -> [Linear(width) -> f] x depth -> Linear(1); ``depth`` = number of hidden
layers (as ``model.depth`` in actlab.models). Inputs live on D = [-sqrt(3), sqrt(3)] (mean 0,
variance 1 under the uniform law, i.e. standardised data). Parameters (`Params`): per layer
W (T, out, in) and b (T, out, 1), one slice per net.

Inits (one trial = one independent draw of every parameter):
  he   W ~ N(0, 2 / ((1 + a^2) fan_in)) (a = the activation's negative slope), biases 0: exactly
       actlab.activations.init_weights("kaiming"), i.e. what actlab's models use.
  rai  randomized asymmetric init (Lu et al.): per neuron, its fan_in weights and its bias are drawn
       N(0, 1) * 0.6007 / sqrt(fan_in), then one of these fan_in + 1 parameters, chosen uniformly,
       is replaced by a Beta(2, 1) draw (sampled as sqrt(U), U ~ U(0, 1): its CDF is x^2). Applied to
       every layer, the output layer included (the output layer cannot make a net constant).

Constant on D, decided exactly (`constant_on_grid`; where it is tested: actlab.borndead.test_points):
forward-mode differentiation (value h and tangent t = dh/dx propagated together, t <- f'(z) * W t)
gives df/dx at a set of test points of D, and the net is called constant iff df/dx == 0 *exactly*
(float64) at every test point. Why exact zero and not a tolerance: for ReLU, df/dx = W_out D_L W_L
... D_1 W_1 with 0/1 masks D_l; a layer with every unit off at x gives a zero vector that stays
exactly zero through the remaining products, while a live path gives a nonzero product except on a
null set of weights. f'(z) is closed-form for relu / leaky_relu / prelu (torch's conventions: ReLU's
subgradient at 0 is 0) and autograd on the activation module for every other activation. For
activations whose derivative never vanishes (leaky_relu, prelu with a != 0) df/dx is nonzero except
on a null set, so no such net is called constant (their born-dead estimate is exactly 0).
  Speed: all trials of a cell are one batched forward-mode pass (weights (trials, width, width),
  bmm); a net whose tangent is exactly zero at every point after some layer is settled and leaves
  the batch; on a grid, nets are first tested at 9 of its points (a nonzero df/dx there already
  proves them non-constant) and the still-constant ones on the other points in chunks of 64, each
  chunk only on the nets still constant (the same answer as one pass, 2-3x less CPU on RAI cells).

Why not actlab.stacked_mlp: that is K `models.MLP` modules in the engine's layout (weight (K, in, out),
batches (K, B, in)) with a hand-written backward for training; here the nets are bare (T, out, in)
tensors on (T, in, G) points, and the study needs the forward-mode tangent pass, which it lacks. The
plain forward the two share is one baddbmm per layer.
"""

from __future__ import annotations

import math
import zlib

import torch
from torch import nn

from actlab import activations

DOMAIN = math.sqrt(3.0)  # D = [-sqrt(3), sqrt(3)]: uniform inputs with variance 1
INITS = ("he", "rai")
RAI_SCALE = 0.6007  # Lu et al.'s sigma * sqrt(fan_in)

Params = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: W (T, out, in), b (T, out, 1)


def cell_generator(seed: int, *key) -> torch.Generator:
    """A generator seeded from (seed, cell): every cell is reproducible on its own."""
    return torch.Generator().manual_seed(zlib.crc32(repr((seed, *key)).encode()))


def init_params(
    init: str, activation: str, width: int, depth: int, trials: int, gen: torch.Generator, dtype=torch.float64
) -> Params:
    """`trials` independent draws of a 1 -> width^depth -> 1 MLP's parameters."""
    sizes = [1] + [width] * depth + [1]
    slope = activations.spec(activation).negative_slope({})
    params: Params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        if init == "he":
            std = math.sqrt(2.0 / ((1.0 + slope**2) * fan_in))
            w = torch.randn(trials, fan_out, fan_in, generator=gen, dtype=dtype) * std
            b = torch.zeros(trials, fan_out, 1, dtype=dtype)
        elif init == "rai":
            v = torch.randn(trials, fan_out, fan_in + 1, generator=gen, dtype=dtype) * (RAI_SCALE / math.sqrt(fan_in))
            pick = torch.randint(0, fan_in + 1, (trials, fan_out, 1), generator=gen)
            beta21 = torch.rand(trials, fan_out, 1, generator=gen, dtype=dtype).sqrt()  # Beta(2, 1)
            v.scatter_(2, pick, beta21)
            w, b = v[..., :fan_in].contiguous(), v[..., fan_in:].contiguous()
        else:
            raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
        params.append((w, b))
    return params


def grid(points: int, dtype=torch.float64) -> torch.Tensor:
    return torch.linspace(-DOMAIN, DOMAIN, points, dtype=dtype)


def forward(params: Params, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(T, G) outputs of T nets at the points x, differentiable w.r.t. the parameters."""
    h = x.expand(params[0][0].shape[0], 1, len(x))
    for w, b in params[:-1]:
        h = act(torch.baddbmm(b, w, h))
    w, b = params[-1]
    return torch.baddbmm(b, w, h)[:, 0]


def _apply(act: nn.Module, zt: torch.Tensor, out: torch.Tensor) -> None:
    """One activation layer in forward mode: zt = [z | dz] (T, width, 2G) -> out = [f(z) | f'(z) dz].

    f' in closed form for the rectifiers (the hot path; the same values as torch's autograd: ReLU's
    subgradient at 0 is 0, the leaky ones take the slope a at 0), by autograd on the activation
    module for every other activation. `out` may be a view into a preallocated buffer."""
    g = zt.shape[2] // 2
    z, dz = zt[..., :g], zt[..., g:]
    if type(act) is nn.ReLU:
        slope = z > 0
    elif type(act) in (nn.LeakyReLU, nn.PReLU):
        a = act.negative_slope if type(act) is nn.LeakyReLU else act.weight.detach().view(1, -1, 1).to(z.dtype)
        slope = torch.where(z > 0, torch.ones((), dtype=z.dtype), a * torch.ones((), dtype=z.dtype))
    else:
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            h = act(zz)
            (slope,) = torch.autograd.grad(h.sum(), zz)  # elementwise f: d[i] = f'(z[i])
        out[..., :g] = h.detach()
        torch.mul(dz, slope, out=out[..., g:])
        return
    torch.mul(z, slope, out=out[..., :g])
    torch.mul(dz, slope, out=out[..., g:])


def _augment(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[W | b] (T, out, in + 1): the bias rides along as a weight on a constant input row."""
    return torch.cat([w, b], dim=2)


def _input(x: torch.Tensor, trials: int, width: int, dtype) -> torch.Tensor:
    """The forward-mode state (T, width + 1, 2G): rows = units (+ a constant row for the bias),
    columns = values at the G points | tangents d/dx there. Starts as the input x with tangent 1."""
    g = len(x)
    ht = torch.zeros(trials, width + 1, 2 * g, dtype=dtype)
    ht[:, 0, :g] = x.to(dtype)
    ht[:, 0, g:] = 1.0
    ht[:, width, :g] = 1.0  # bias row: value 1, tangent 0
    return ht


@torch.no_grad()
def value_and_derivative(params: Params, act: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and df/dx, both (T, G), for T nets at the G points x, by forward-mode differentiation."""
    t_count, g, dtype = params[0][0].shape[0], len(x), params[0][0].dtype
    ht = _input(x, t_count, 1, dtype)
    for i, (w, b) in enumerate(params[:-1]):
        zt = torch.bmm(_augment(w, b), ht)  # (T, width, 2G) = [W h + b | W t]
        if i == 0:
            ht = _input(x, t_count, w.shape[1], dtype)  # width-sized state from here on
        _apply(act, zt, ht[:, :-1])
    zt = torch.bmm(_augment(*params[-1]), ht)
    return zt[:, 0, :g], zt[:, 0, g:]


@torch.no_grad()
def constant_on_grid(params: Params, act: nn.Module, x: torch.Tensor, coarse: int = 9, chunk: int = 64) -> torch.Tensor:
    """(T,) bool: df/dx == 0 exactly at every point of x.

    The same answer as one pass over all of x, in stages: first `coarse` points spread over x, then
    the other points in chunks of `chunk`; a net with a nonzero df/dx at any point tested so far is
    proven non-constant and leaves, so only the nets still all-zero are tested on the next chunk.
    Why chunks: a net leaves a pass only once every point of the pass is settled, and a short pass
    settles sooner (and its state fits the cache)."""
    t_count = params[0][0].shape[0]
    if len(x) <= 2 * coarse:
        return _constant_at(params, act, x)
    first = torch.linspace(0, len(x) - 1, coarse).round().long()
    rest = torch.ones(len(x), dtype=torch.bool)
    rest[first] = False
    undecided = torch.arange(t_count)  # nets with df/dx == 0 at every point tested so far
    for pts in (x[first], *x[rest].split(chunk)):
        sub = params if len(undecided) == t_count else [(w[undecided], b[undecided]) for w, b in params]
        undecided = undecided[_constant_at(sub, act, pts)]
        if len(undecided) == 0:
            break
    out = torch.zeros(t_count, dtype=torch.bool)
    out[undecided] = True
    return out


def _constant_at(params: Params, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(T,) bool: df/dx == 0 exactly at every point of x, in one forward-mode pass.

    Same pass as `value_and_derivative`, but a net whose tangent is exactly zero at every point
    after some layer is settled (zero stays zero through W and f') and leaves the batch: deep
    ReLU nets mostly die early, so the deep cells cost little."""
    t_count, g, dtype = params[0][0].shape[0], len(x), params[0][0].dtype
    dead = torch.zeros(t_count, dtype=torch.bool)
    alive = torch.arange(t_count)  # the nets still in the batch
    ht = _input(x, t_count, 1, dtype)
    for i, (w, b) in enumerate(params):
        wb = _augment(w, b) if len(alive) == t_count else _augment(w[alive], b[alive])
        zt = torch.bmm(wb, ht)
        if i == len(params) - 1:
            dead[alive] = torch.count_nonzero(zt[:, 0, g:], dim=1) == 0
            return dead
        if i == 0:
            ht = _input(x, t_count, w.shape[1], dtype)
        _apply(act, zt, ht[:, :-1])
        zero = torch.count_nonzero(ht[:, :-1, g:], dim=(1, 2)) == 0  # (T_alive,)
        if zero.any():
            dead[alive[zero]] = True
            alive, ht = alive[~zero], ht[~zero]
            if len(alive) == 0:
                return dead
    raise AssertionError("unreachable")


def dead_layer(params: Params, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(T,) bool: some hidden layer outputs exactly zero at every point of x (a dead layer).

    A dead layer makes a net constant, but not conversely: with biases, a net can be constant
    because a different layer is all-off at different inputs (then training can revive it)."""
    t_count = params[0][0].shape[0]
    h = x.to(params[0][0].dtype).expand(t_count, 1, len(x))
    out = torch.zeros(t_count, dtype=torch.bool)
    with torch.no_grad():
        for w, b in params[:-1]:
            h = act(torch.baddbmm(b, w, h))
            out |= torch.count_nonzero(h, dim=(1, 2)) == 0
    return out
