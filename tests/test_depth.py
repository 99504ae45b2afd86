"""The depth study: born-dead estimator against brute force and exact cases; the CLI."""
import math

import pandas as pd
import pytest
import torch
from torch import nn

from actlab import activations, depth
from conftest import run_cli


def draw(init, activation, width, d, trials, seed=0):
    return depth.init_params(init, activation, width, d, trials, torch.Generator().manual_seed(seed))


def sequential(params, t: int, activation: str) -> nn.Sequential:
    """Trial t of the batched parameters as an ordinary float64 nn.Sequential."""
    layers = []
    for i, (w, b) in enumerate(params):
        lin = nn.Linear(w.shape[2], w.shape[1]).double()
        with torch.no_grad():
            lin.weight.copy_(w[t])
            lin.bias.copy_(b[t, :, 0])
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(activations.build(activation, num_features=w.shape[1]).double())
    return nn.Sequential(*layers)


def brute_force_constant(params, activation: str, x: torch.Tensor) -> list[bool]:
    """One net at a time: constant iff its outputs on the grid agree to rounding (1e-13 relative;
    deep narrow live nets can have slopes ~1e-10, which a looser tolerance would call constant)."""
    out = []
    with torch.no_grad():
        for t in range(params[0][0].shape[0]):
            y = sequential(params, t, activation)(x[:, None])[:, 0]
            out.append(bool(y.max() - y.min() <= 1e-13 * (1 + y.abs().max())))
    return out


@pytest.mark.parametrize("init", ["he", "rai"])
@pytest.mark.parametrize("width,d", [(1, 3), (2, 5), (3, 10), (2, 20)])
def test_relu_born_dead_agrees_with_one_net_at_a_time(init, width, d):
    params = draw(init, "relu", width, d, 100, seed=width * 100 + d)
    act = activations.build("relu")
    x = depth.grid(257)
    fast = depth.constant_on_grid(params, act, depth.test_points("relu", init, 257)).tolist()
    slow = brute_force_constant(params, "relu", x)
    assert fast == slow
    assert 0 < sum(fast) < len(fast)  # dead and live nets both present: a real comparison


@pytest.mark.parametrize("activation", ["leaky_relu", "prelu"])
@pytest.mark.parametrize("init", ["he", "rai"])
def test_leaky_activations_are_never_born_dead(activation, init):
    for width in (1, 2, 5):
        for d in (2, 10, 50):
            row = depth.born_dead_cell(activation, init, width, d, trials=300, points=65, seed=1)
            assert row["born_dead"] == 0 and row["p_born_dead"] == 0.0 and row["ci_low"] == 0.0


def test_width_one_relu_matches_the_sign_rule_exactly():
    # bias-free width 1: x = +-1 leave layer 1 as one positive signal, which layer l >= 2 passes iff w_l > 0
    for d in (2, 3, 6):
        params = draw("he", "relu", 1, d, 2000, seed=d)
        fast = depth.constant_on_grid(params, activations.build("relu"), depth.test_points("relu", "he", 257))
        signs = torch.stack([w[:, 0, 0] for w, _ in params[1:-1]], dim=1)  # (T, d - 1)
        assert torch.equal(fast, (signs < 0).any(dim=1))
        row = depth.born_dead_cell("relu", "he", 1, d, trials=4000, points=257, seed=0)
        exact = 1 - 2.0 ** -(d - 1)
        assert row["theory_exact"] == exact
        assert abs(row["p_born_dead"] - exact) <= 4 * math.sqrt(exact * (1 - exact) / 4000) + 1e-12


def test_relu_he_estimates_lie_within_the_derived_bounds():
    for width, d in [(2, 2), (2, 10), (3, 5), (5, 20)]:
        r = depth.born_dead_cell("relu", "he", width, d, trials=2000, points=257, seed=0)
        assert r["theory_low"] <= r["theory_high"]
        assert r["ci_high"] >= r["theory_low"] and r["ci_low"] <= r["theory_high"], r


def test_two_point_test_equals_full_grid_for_bias_free_rectifiers():
    params = draw("he", "relu", 2, 8, 500)
    act = activations.build("relu")
    assert torch.equal(depth.constant_on_grid(params, act, depth.test_points("relu", "he", 257)),
                       depth.constant_on_grid(params, act, depth.grid(257)))
    assert len(depth.test_points("relu", "he", 257)) == 2 and len(depth.test_points("relu", "rai", 257)) == 257
    assert len(depth.test_points("gelu", "he", 257)) == 257  # not positively homogeneous


def test_coarse_stage_gives_the_same_answer_as_one_pass():
    for activation, init in [("relu", "rai"), ("relu", "he"), ("tanh", "rai")]:
        params = draw(init, activation, 3, 10, 200)
        act = activations.build(activation, num_features=3).double()
        x = depth.grid(257)
        assert torch.equal(depth.constant_on_grid(params, act, x), depth._constant_at(params, act, x))


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu", "gelu", "tanh", "elu"])
def test_forward_mode_equals_autograd_on_nn_sequential(activation):
    params = draw("rai", activation, 3, 4, 5)
    act = activations.build(activation, num_features=3).double()
    x = torch.linspace(-1.7, 1.7, 11, dtype=torch.float64)
    f, dfdx = depth.value_and_derivative(params, act, x)
    for t in range(5):
        xx = x[:, None].clone().requires_grad_(True)
        y = sequential(params, t, activation)(xx)[:, 0]
        (g,) = torch.autograd.grad(y.sum(), xx)
        assert torch.allclose(f[t], y.detach(), rtol=1e-12, atol=1e-12)
        assert torch.allclose(dfdx[t], g[:, 0], rtol=1e-12, atol=1e-12)


def test_init_scales():
    he = draw("he", "prelu", 10, 2, 4000)
    assert he[1][0].std().item() == pytest.approx(math.sqrt(2 / (1.0625 * 10)), rel=0.02)
    assert all((b == 0).all() for _, b in he)
    rai = draw("rai", "relu", 10, 2, 4000)
    wb = torch.cat([rai[1][0], rai[1][1]], dim=2)  # (T, 10, 11): each neuron's 11 parameters
    in_unit = ((wb > 0) & (wb <= 1)).sum(dim=2)
    assert (in_unit >= 1).all()  # the Beta(2, 1) draw is in (0, 1]
    # Beta(2,1) has mean 2/3: the per-neuron sum's mean shifts by 2/3 from the N(0, .) draws'
    assert wb.sum(dim=2).mean().item() == pytest.approx(2 / 3, abs=0.02)


def test_rai_lowers_the_born_dead_probability():  # Lu et al.'s point, at one cell
    he = depth.born_dead_cell("relu", "he", 2, 10, 1000, 257, seed=0)["p_born_dead"]
    rai = depth.born_dead_cell("relu", "rai", 2, 10, 1000, 257, seed=0)["p_born_dead"]
    assert rai < he - 0.3


def test_wilson_interval():
    assert depth.wilson(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-5))
    lo, hi = depth.wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.23659, abs=1e-5), pytest.approx(0.76341, abs=1e-5))
    assert depth.wilson(10, 10)[1] == 1.0


def test_collapse_born_dead_nets_stay_constant_and_leaky_never_collapses():
    rows = depth.collapse_cells("relu", ["he", "rai"], 2, 6, seeds=32, steps=60, lr=1e-2, points=129, seed=0)
    assert [r["init"] for r in rows] == ["he", "rai"]
    for r in rows:
        assert r["collapsed"] >= r["born_dead"]
    assert rows[0]["born_dead"] > 0
    leaky = depth.collapse_cells("leaky_relu", ["he"], 2, 6, seeds=32, steps=60, lr=1e-2, points=129, seed=0)
    assert leaky[0]["collapsed"] == 0
    with pytest.raises(ValueError, match="parameter-free"):
        depth.collapse_cells("prelu", ["he"], 2, 3, seeds=2, steps=1, lr=1e-2, points=9, seed=0)


def test_cli_quick_writes_both_tables(tmp_path):
    p = run_cli("--quick", "--out-dir", str(tmp_path), module="actlab.depth", timeout=120)
    assert p.returncode == 0, p.stderr
    born = pd.read_csv(tmp_path / "born_dead.csv")
    assert list(born.columns) == depth.BORN_DEAD_COLUMNS
    assert len(born) == 2 * 2 * 3 * 3  # activations x inits x widths x depths
    assert (born[born.activation == "leaky_relu"].born_dead == 0).all()
    assert (born.trials == 200).all()
    coll = pd.read_csv(tmp_path / "collapse.csv")
    assert list(coll.columns) == depth.COLLAPSE_COLUMNS and len(coll) == 2 * 2


@pytest.mark.parametrize("args,msg", [
    (["--trials", "0"], "--trials"), (["--widths", "2,x"], "--widths"), (["--activations", "nope"], "nope"),
    (["--inits", "xavier"], "xavier"), (["--collapse-activations", "prelu"], "prelu"), (["--bogus"], "--bogus"),
    (["--collapse-cells", "2by3"], "WIDTHxDEPTH"),
])
def test_bad_arguments_one_line_exit_2(tmp_path, capsys, args, msg):
    with pytest.raises(SystemExit) as e:
        depth.main(["--out-dir", str(tmp_path), "--no-collapse", *args])
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0]
    assert not (tmp_path / "born_dead.csv").exists()


def test_cli_bad_argument_as_a_user_sees_it(tmp_path):
    p = run_cli("--out-dir", str(tmp_path), "--depths", "0", module="actlab.depth", timeout=60)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and p.stderr.startswith("error: ")
