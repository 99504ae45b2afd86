"""The activation zoo against torch's own implementations and the papers' closed forms."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from actlab import activations as A

# Points on both sides of 0 (avoiding the kinks at exactly 0 for gradcheck), float64.
X = torch.tensor([-6.0, -3.0, -1.5, -0.75, -0.3, -1e-3, 1e-3, 0.3, 0.75, 1.5, 3.0, 6.0], dtype=torch.float64)

TORCH_REFERENCE = {
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "prelu": lambda x: F.prelu(x, torch.tensor([0.25], dtype=x.dtype)),
    "elu": lambda x: F.elu(x, alpha=1.0),
    "selu": F.selu,
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "silu": F.silu,
    "mish": F.mish,
    "softplus": F.softplus,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}

Phi = lambda x: 0.5 * (1 + torch.erf(x / math.sqrt(2)))  # noqa: E731
phi = lambda x: torch.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
sig = torch.sigmoid


def _sp(x):
    return F.softplus(x)


# First derivatives in closed form, from the papers (see shared/REFERENCES.md).
DERIVATIVE = {
    "relu": lambda x: (x > 0).double(),
    "leaky_relu": lambda x: torch.where(x > 0, 1.0, 0.01),
    "prelu": lambda x: torch.where(x > 0, 1.0, 0.25),
    "elu": lambda x: torch.where(x > 0, 1.0, 1.0 * torch.exp(x)),  # alpha * e^x, NOT alpha(e^x - 1)
    "selu": lambda x: A.SELU_LAMBDA * torch.where(x > 0, 1.0, A.SELU_ALPHA * torch.exp(x)),
    "gelu": lambda x: Phi(x) + x * phi(x),
    "silu": lambda x: sig(x) * (1 + x * (1 - sig(x))),
    "mish": lambda x: torch.tanh(_sp(x)) + x * sig(x) / torch.cosh(_sp(x)) ** 2,
    "softplus": sig,
    "tanh": lambda x: 1 - torch.tanh(x) ** 2,
    "sigmoid": lambda x: sig(x) * (1 - sig(x)),
}


# The study's activations: checked against the independent oracles above. An activation added to the
# registry later is checked by every test that needs no oracle (gradcheck, homogeneity, metadata).
STUDY = sorted(TORCH_REFERENCE)


def test_registry_has_every_required_activation():
    assert set(STUDY) <= set(A.NAMES)
    assert set(TORCH_REFERENCE) == set(DERIVATIVE)


def _gradcheck_points(spec) -> torch.Tensor:
    """X, moved 1e-3 away from any of the activation's kinks (gradcheck's finite differences
    straddle a kink otherwise), plus points on both sides of each kink."""
    x = X.clone()
    for k in spec.kinks:
        near = (x - k).abs() < 1e-3
        x[near] = k + torch.where(x[near] >= k, 1e-3, -1e-3).to(x.dtype)
    extra = [k + s for k in spec.kinks for s in (-0.01, 0.01)]
    return torch.cat([x, torch.tensor(extra, dtype=torch.float64)])


def test_every_activation_has_a_yaml(tmp_path):
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "conf" / "activation"
    assert {p.stem for p in conf.glob("*.yaml")} == set(A.NAMES)


@pytest.mark.parametrize("name", STUDY)
def test_values_match_torch(name):
    act = A.build(name).double()
    torch.testing.assert_close(act(X), TORCH_REFERENCE[name](X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", STUDY)
def test_derivative_matches_closed_form(name):
    x = X.clone().requires_grad_(True)
    y = A.build(name).double()(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    # rtol 1e-7: torch's leaky_relu backward rounds the slope 0.01 through float32 (error 2e-10).
    torch.testing.assert_close(g, DERIVATIVE[name](X).double(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("name", A.NAMES)
def test_gradcheck_float64_both_sides_of_zero(name):
    act = A.build(name).double()
    x = _gradcheck_points(A.spec(name)).requires_grad_(True)
    assert torch.autograd.gradcheck(act, (x,), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("name", A.NAMES)
def test_homogeneous_flag_is_true(name):
    """`homogeneous` (the depth study's exact two-point test relies on it) agrees with f(cx) = c f(x)
    for c > 0, checked on a wide grid with c from 1e-3 to 1e3."""
    act = A.build(name).double()
    x = torch.linspace(-50, 50, 2001, dtype=torch.float64)
    with torch.no_grad():
        holds = all(
            torch.allclose(act(c * x), c * act(x), rtol=1e-9, atol=1e-12) for c in (1e-3, 0.1, 0.5, 2.0, 7.0, 1e3)
        )
    assert A.spec(name).homogeneous == holds


@pytest.mark.parametrize("name", A.NAMES)
def test_kinks_are_where_the_derivative_jumps(name):
    """Every listed kink is a jump of f' (left and right derivatives differ), and away from the
    listed kinks f' is continuous on [-6, 6] (no unlisted jump)."""
    spec = A.spec(name)
    act = A.build(name).double()

    def d(x):
        x = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(act(x).sum(), x)
        return g

    for k in spec.kinks:
        left, right = d(torch.tensor([k - 1e-9], dtype=torch.float64)), d(torch.tensor([k + 1e-9], dtype=torch.float64))
        assert (left - right).abs().item() > 1e-3, (name, k)
    x = torch.linspace(-6, 6, 120001, dtype=torch.float64)
    keep = torch.ones_like(x, dtype=torch.bool)
    for k in spec.kinks:
        keep &= (x - k).abs() > 2e-4
    g = d(x)
    jumps = (g[1:] - g[:-1]).abs()[keep[1:] & keep[:-1]]
    assert jumps.max().item() < 1e-2, name


@pytest.mark.parametrize("name", A.NAMES)
def test_metadata_for_figures_and_article(name):
    spec = A.spec(name)
    assert spec.display and spec.reference and spec.formula and spec.derivative
    assert spec.init in ("kaiming", "lecun", "xavier")
    colors = [A.spec(n).color for n in A.NAMES if A.spec(n).color]
    assert len(colors) == len(set(colors)), "two activations share a colour"


def test_paper_defaults():
    assert A.build("elu").alpha == 1.0
    assert A.build("leaky_relu").negative_slope == 0.01
    prelu = A.build("prelu", num_features=7)
    assert prelu.weight.shape == (7,) and torch.all(prelu.weight == 0.25)
    assert A.build("prelu", num_features=7, mode="layer").weight.shape == (1,)
    assert A.build("gelu").approximate == "none"
    assert A.build("gelu", approximate="tanh").approximate == "tanh"
    # SELU's constants from Klambauer et al. (eq. 14), and torch uses the same ones.
    x = torch.tensor([-1.0], dtype=torch.float64)
    torch.testing.assert_close(F.selu(x), A.SELU_LAMBDA * A.SELU_ALPHA * (torch.exp(x) - 1))


def test_gelu_tanh_form_is_close_to_erf_form():
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    exact, approx = A.build("gelu").double()(x), A.build("gelu", approximate="tanh").double()(x)
    assert (exact - approx).abs().max() < 5e-4  # Hendrycks & Gimpel: ~4.7e-4 on [-6, 6]
    tanh_form = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    torch.testing.assert_close(approx, tanh_form)


def test_known_minima():
    x = torch.linspace(-3, 0, 300001, dtype=torch.float64)
    for name, xmin, fmin in [("gelu", -0.752, -0.170), ("silu", -1.278, -0.278), ("mish", -1.1924, -0.30884)]:
        y = A.build(name).double()(x)
        i = y.argmin()
        assert abs(x[i].item() - xmin) < 2e-3 and abs(y[i].item() - fmin) < 1e-3, name


def test_prelu_slope_is_learnable():
    prelu = A.build("prelu", num_features=3)
    prelu(torch.tensor([[-1.0, -2.0, 3.0]])).sum().backward()
    torch.testing.assert_close(prelu.weight.grad, torch.tensor([-1.0, -2.0, 0.0]))


def test_unknown_activation_lists_valid_names():
    with pytest.raises(A.UnknownActivation, match="valid: elu, gelu"):
        A.build("no_such_activation")
    with pytest.raises(ValueError, match="bad parameters"):
        A.build("relu", slope=2)


@pytest.mark.parametrize(
    "scheme,expected_var",
    [
        ("kaiming", lambda fi, fo, a: 2 / ((1 + a * a) * fi)),
        ("lecun", lambda fi, fo, a: 1 / fi),
        ("xavier", lambda fi, fo, a: 2 / (fi + fo)),
    ],
)
@pytest.mark.parametrize("slope", [0.0, 0.25])
def test_init_variances(scheme, expected_var, slope):
    torch.manual_seed(0)
    fan_in, fan_out = 400, 300
    layer = nn.Linear(fan_in, fan_out)
    A.init_weights(layer, scheme, slope)
    var = layer.weight.var().item()
    assert abs(var / expected_var(fan_in, fan_out, slope) - 1) < 0.02
    assert torch.all(layer.bias == 0)


def test_torch_default_is_not_he_init():
    torch.manual_seed(0)
    layer = nn.Linear(400, 300)
    A.init_weights(layer, "torch_default")
    # kaiming_uniform_(a=sqrt 5) = U(+-1/sqrt(fan_in)): Var = 1/(3 fan_in), a sixth of He's 2/fan_in.
    assert abs(layer.weight.var().item() * 3 * 400 - 1) < 0.02


def test_recommended_inits():
    assert A.spec("selu").init == "lecun"
    assert A.spec("tanh").init == A.spec("sigmoid").init == "xavier"
    assert all(A.spec(n).init == "kaiming" for n in ("relu", "leaky_relu", "prelu", "elu", "gelu"))
    assert A.spec("leaky_relu").negative_slope({}) == 0.01
    assert A.spec("prelu").negative_slope({"init": 0.25}) == 0.25
    assert A.spec("relu").negative_slope({}) == 0.0
