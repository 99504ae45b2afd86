"""The activation zoo: one registry entry per activation.

Every entry records the formula from the original paper, the paper's default parameters, the
weight initialisation that paper recommends, and the *family* that decides how the probes define a
"dead" unit (see `actlab.probes`):

- ``rectifier``: f'(z) is exactly 0 on a half-line (ReLU). Dead = f'(z) == 0 for every probe input.
- ``leaky``: f'(z) never vanishes on either side (Leaky ReLU, PReLU with a != 0). Nothing can die;
  the probes report tau-dormant units instead.
- ``exponential``: f'(z) -> 0 only as z -> -inf (ELU, SELU); dead up to a tolerance.
- ``smooth``: self-gated and soft rectifiers (GELU, SiLU, Mish, Softplus); dead up to a tolerance.
- ``saturating``: tanh and sigmoid; f'(z) -> 0 for |z| -> inf on both sides; the probes report the
  saturated fraction (|z| > ``saturate_at`` for every probe input).

Every entry also says how figures and the article name and colour it (``label``, ``color``), where
its derivative jumps (``kinks``: the tests check gradients away from them), and whether it is
positively homogeneous, f(cx) = c f(x) for c > 0 (``homogeneous``: the depth study's exact two-point
test of a bias-free net is valid only then; tests/test_activations.py verifies the flag numerically).

Adding an activation = one `register(...)` call below + one YAML file in ``conf/activation/``; the
tests parametrise over the registry and need no edit (docs/extending.md).
Optional, for speed only: its backward kernel in `actlab.fastpaths.ACT_BACKWARD` (without one, the
vectorised trainer takes that activation's gradients from autograd, ~7 % slower per step).

Importing this module does not import torch: the figures, tables and article read only the entries'
names, labels, colours and families, and torch costs ~3 s of start-up in each of those processes.
torch is imported when an activation is built (`build`, `init_weights`, `Mish`): the entries'
`make` functions name torch's modules, they do not hold them. The valid ``model.init`` values are
checked in `actlab.schema` (INITS, RANGES).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

# SELU's fixed-point constants (Klambauer et al. 2017, eq. 14), to the precision the paper gives.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Spec:
    """How to build one activation and what the rest of actlab needs to know about it."""

    name: str
    make: Callable[..., nn.Module]  # make(num_features, **params) -> nn.Module
    init: str  # recommended weight init: "kaiming" | "lecun" | "xavier"
    family: str  # see the module docstring
    formula: str  # LaTeX, for the article
    derivative: str  # LaTeX, for the article
    reference: str
    defaults: dict = field(default_factory=dict)
    saturate_at: float | None = None  # |z| beyond which a saturating unit counts as saturated
    label: str = ""  # display name in figures and the article (default: the name)
    color: str = ""  # one fixed colour in every figure (default: a stable grey)
    homogeneous: bool = False  # f(cx) = c f(x) for every c > 0 (with the default parameters)
    kinks: tuple[float, ...] = ()  # where f' is discontinuous (gradcheck stays away from them)

    @property
    def display(self) -> str:
        return self.label or self.name

    def negative_slope(self, params: dict) -> float:
        """Slope for x < 0 that He init must account for: Var[w] = 2 / ((1 + a^2) fan_in)."""
        p = {**self.defaults, **params}
        return float(p.get("negative_slope", p.get("init", 0.0))) if self.family == "leaky" else 0.0


REGISTRY: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    if spec.name in REGISTRY:
        raise ValueError(f"activation {spec.name!r} registered twice")
    if spec.init not in ("kaiming", "lecun", "xavier"):
        raise ValueError(f"activation {spec.name!r}: unknown init {spec.init!r}")
    REGISTRY[spec.name] = spec
    return spec


def _nn():
    """torch.nn, imported on the first build, not with the registry (see the module docstring)."""
    from torch import nn  # noqa: PLC0415  (here: keeps torch out of the figures' and article's start-up)

    return nn


@functools.cache
def _mish_class() -> type:
    """The Mish module class, defined on first use (it subclasses torch's nn.Module); one class for
    the process, so `isinstance` and `actlab.fastpaths.ACT_BACKWARD[activations.Mish]` hold."""
    import torch.nn.functional as F  # noqa: PLC0415  (here: torch only when a Mish is built, for start-up)

    nn = _nn()

    class Mish(nn.Module):
        """Mish (Misra 2019): x * tanh(softplus(x)). Same values as torch's nn.Mish; kept as a module
        so every activation layer is an nn.Module the probes can hook."""

        def forward(self, x):  # x: any shape -> the same shape
            return F.mish(x)

    # pickled (and repr'd) as actlab.activations.Mish, which module __getattr__ below resolves
    Mish.__module__, Mish.__qualname__ = __name__, "Mish"
    return Mish


def __getattr__(name: str):
    """`activations.Mish`: the class, created (with torch imported) on first access (PEP 562)."""
    if name == "Mish":
        return _mish_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _prelu(num_features: int | None, init: float = 0.25, mode: str = "unit") -> nn.Module:
    # He et al. 2015 use one slope per channel ("channel-wise") or one per layer ("channel-shared").
    # nn.PReLU with num_parameters=C acts on dim 1, i.e. per unit (MLP) or per channel (CNN).
    if mode not in ("unit", "layer"):
        raise ValueError(f"prelu mode must be 'unit' or 'layer', got {mode!r}")
    n = 1 if mode == "layer" or num_features is None else int(num_features)
    return _nn().PReLU(num_parameters=n, init=float(init))


def _gelu(num_features=None, approximate: str = "none") -> nn.Module:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu approximate must be 'none' (erf) or 'tanh', got {approximate!r}")
    return _nn().GELU(approximate=approximate)


def _leaky(num_features=None, negative_slope: float = 0.01) -> nn.Module:
    return _nn().LeakyReLU(negative_slope=float(negative_slope))


def _elu(num_features=None, alpha: float = 1.0) -> nn.Module:
    return _nn().ELU(alpha=float(alpha))


def _softplus(num_features=None, beta: float = 1.0, threshold: float = 20.0) -> nn.Module:
    return _nn().Softplus(beta=float(beta), threshold=float(threshold))


def _plain(cls):
    """make() for a parameterless module: `cls` a torch.nn class's name ("ReLU": torch.nn.ReLU, looked
    up when built, so that registering does not import torch), "Mish" (ours, above), or a class."""
    if not isinstance(cls, str):
        return lambda num_features=None: cls()
    return lambda num_features=None: (_mish_class() if cls == "Mish" else getattr(_nn(), cls))()


register(
    Spec(
        "relu",
        _plain("ReLU"),
        "kaiming",
        "rectifier",
        r"\max(0, x)",
        r"\mathbb{1}[x > 0]",
        "Nair & Hinton 2010",
        label="ReLU",
        color="#000000",
        homogeneous=True,
        kinks=(0.0,),
    )
)
register(
    Spec(
        "leaky_relu",
        _leaky,
        "kaiming",
        "leaky",
        r"x \text{ if } x > 0 \text{ else } a x",
        r"1 \text{ if } x > 0 \text{ else } a",
        "Maas, Hannun & Ng 2013",
        defaults={"negative_slope": 0.01},
        label="Leaky ReLU",
        color="#1f77b4",
        homogeneous=True,
        kinks=(0.0,),
    )
)
register(
    Spec(
        "prelu",
        _prelu,
        "kaiming",
        "leaky",
        r"\max(0, x) + a \min(0, x),\ a \text{ learned}",
        r"1 \text{ if } x > 0 \text{ else } a",
        "He, Zhang, Ren & Sun 2015",
        defaults={"init": 0.25, "mode": "unit"},
        label="PReLU",
        color="#74a9cf",
        homogeneous=True,
        kinks=(0.0,),
    )
)
register(
    Spec(
        "elu",
        _elu,
        "kaiming",
        "exponential",
        r"x \text{ if } x > 0 \text{ else } \alpha (e^{x} - 1)",
        r"1 \text{ if } x > 0 \text{ else } \alpha e^{x}",
        "Clevert, Unterthiner & Hochreiter 2016",
        defaults={"alpha": 1.0},
        label="ELU",
        color="#2ca02c",
    )
)  # C1 at 0 for alpha = 1: no kink
register(
    Spec(
        "selu",
        _plain("SELU"),
        "lecun",
        "exponential",
        r"\lambda \,(x \text{ if } x > 0 \text{ else } \alpha (e^{x} - 1))",
        r"\lambda \text{ if } x > 0 \text{ else } \lambda \alpha e^{x}",
        "Klambauer, Unterthiner, Mayr & Hochreiter 2017",
        label="SELU",
        color="#17becf",
        kinks=(0.0,),
    )
)  # f' jumps from lambda*alpha to lambda
register(
    Spec(
        "gelu",
        _gelu,
        "kaiming",
        "smooth",
        r"x \,\Phi(x) = \tfrac{x}{2}\left[1 + \operatorname{erf}(x/\sqrt{2})\right]",
        r"\Phi(x) + x \,\varphi(x)",
        "Hendrycks & Gimpel 2016",
        defaults={"approximate": "none"},
        label="GELU",
        color="#d62728",
    )
)
register(
    Spec(
        "silu",
        _plain("SiLU"),
        "kaiming",
        "smooth",
        r"x \,\sigma(x)",
        r"\sigma(x)\,(1 + x (1 - \sigma(x)))",
        "Elfwing, Uchibe & Doya 2018; Ramachandran, Zoph & Le 2017",
        label="SiLU",
        color="#ff7f0e",
    )
)
register(
    Spec(
        "mish",
        _plain("Mish"),
        "kaiming",
        "smooth",
        r"x \tanh(\operatorname{softplus}(x))",
        r"\tanh(s) + x \,\sigma(x) \operatorname{sech}^2(s),\ s = \operatorname{softplus}(x)",
        "Misra 2019",
        label="Mish",
        color="#9467bd",
    )
)
register(
    Spec(
        "softplus",
        _softplus,
        "kaiming",
        "smooth",
        r"\tfrac{1}{\beta} \ln(1 + e^{\beta x})",
        r"\sigma(\beta x)",
        "Dugas et al. 2001",
        defaults={"beta": 1.0, "threshold": 20.0},
        label="Softplus",
        color="#e377c2",
    )
)
register(
    Spec(
        "tanh",
        _plain("Tanh"),
        "xavier",
        "saturating",
        r"\tanh x",
        r"1 - \tanh^2 x",
        "LeCun et al. 1998",
        saturate_at=2.5,
        label="tanh",
        color="#8c564b",
    )
)
register(
    Spec(
        "sigmoid",
        _plain("Sigmoid"),
        "xavier",
        "saturating",
        r"\sigma(x) = 1 / (1 + e^{-x})",
        r"\sigma(x)(1 - \sigma(x))",
        "Rumelhart, Hinton & Williams 1986",
        saturate_at=5.0,
        label="sigmoid",
        color="#bcbd22",
    )
)

NAMES: tuple[str, ...] = tuple(REGISTRY)


from actlab.errors import UnknownActivation  # noqa: E402  (re-exported: callers catch it from here)


def spec(name: str) -> Spec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownActivation(f"unknown activation {name!r}; valid: {', '.join(sorted(REGISTRY))}") from None


def build(name: str, num_features: int | None = None, **params) -> nn.Module:
    """Build activation `name` with the paper's defaults overridden by `params`.

    `num_features` is the width of the layer it follows; only per-unit PReLU uses it.
    """
    s = spec(name)
    kwargs = {**s.defaults, **params}
    try:
        return s.make(num_features, **kwargs)
    except TypeError as e:  # an unknown parameter name
        raise ValueError(f"activation {name!r}: bad parameters {params}: {e}") from None


def init_weights(layer: nn.Module, scheme: str, negative_slope: float = 0.0) -> None:
    """Initialise a Linear/Conv layer's weight (biases to 0) with `scheme`.

    kaiming: N(0, 2 / ((1 + a^2) fan_in)), He et al. 2015 (a = the negative slope).
    lecun:   N(0, 1 / fan_in), what SELU's self-normalisation assumes.
    xavier:  N(0, 2 / (fan_in + fan_out)), Glorot & Bengio 2010 (gain 1, as in the paper).
    torch_default: leave torch's kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)); NOT He init.
    """
    if scheme == "torch_default":
        return
    nn = _nn()
    w = layer.weight
    if scheme == "kaiming":
        nn.init.kaiming_normal_(w, a=negative_slope, mode="fan_in", nonlinearity="leaky_relu")
    elif scheme == "lecun":
        nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="linear")
    elif scheme == "xavier":
        nn.init.xavier_normal_(w, gain=1.0)
    else:
        raise ValueError(f"unknown init {scheme!r}; valid: kaiming, lecun, xavier, torch_default")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
