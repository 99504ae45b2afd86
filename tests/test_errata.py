"""The errata page's numbers (paper/errata.py): each tutorial formula, evaluated as stated, is wrong
by the amount the definition says, and autograd agrees with the correct form."""

import math
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "paper"))
import errata  # noqa: E402


def test_elu_alpha_is_one_and_what_001_would_do():
    a = errata.elu_alpha()
    assert a["torch_default"] == a["registry_default"] == 1.0
    # E[ELU(z)], z ~ N(0,1), by Monte Carlo against the closed form
    import torch

    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for alpha, key in ((1.0, "mean_alpha_1"), (0.01, "mean_alpha_001")):
        mc = torch.nn.functional.elu(z, alpha).mean().item()
        assert mc == pytest.approx(a[key], abs=3e-3)
    assert a["mean_relu"] == pytest.approx(1 / math.sqrt(2 * math.pi))


def test_elu_stated_gradient_is_off_by_alpha_everywhere():
    for alpha in (1.0, 0.5):
        g = errata.elu_gradient(alpha)
        assert g["min_abs_error"] == pytest.approx(alpha) and g["max_abs_error"] == pytest.approx(alpha)
        assert g["closed_form_error"] < 1e-12  # autograd = f(x) + alpha for x < 0
        assert g["true_at_m1"] == pytest.approx(alpha * math.exp(-1))


def test_leaky_stated_derivative_is_wrong_everywhere():
    lk = errata.leaky_derivative(0.01)
    assert lk["fraction_wrong"] == 1.0
    assert lk["max_abs_error"] == pytest.approx(1.01)
    assert set(lk["true"].unique().tolist()) == {0.01, 1.0}


def test_a_relu_unit_stuck_negative_never_moves_a_leaky_one_does():
    d = errata.dying_relu_unit()
    assert d["relu"]["negative_fraction"] == 1.0
    assert d["relu"]["first_grad"] == 0.0 and d["relu"]["weight_change"] == 0.0
    assert d["leaky_relu"]["first_grad"] > 0 and d["leaky_relu"]["weight_change"] > 0.1


@pytest.mark.slow
def test_keras_has_no_prelu_activation():
    k = errata.keras_prelu()
    assert k["error"] and "prelu" in k["error"]
    assert k["elu_alpha"] == 1.0
