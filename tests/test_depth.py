"""The depth study (actlab.depthnets, borndead, collapse, depth): born-dead estimator against brute force
and exact cases; collapse training; the CLI."""

import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import run_cli
from torch import nn

from actlab import activations, borndead, collapse, depth, depthnets


def draw(init, activation, width, d, trials, seed=0):
    return depthnets.init_params(init, activation, width, d, trials, torch.Generator().manual_seed(seed))


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
    x = depthnets.grid(257)
    fast = depthnets.constant_on_grid(params, act, borndead.test_points("relu", init, 257)).tolist()
    slow = brute_force_constant(params, "relu", x)
    assert fast == slow
    assert 0 < sum(fast) < len(fast)  # dead and live nets both present: a real comparison


@pytest.mark.parametrize("activation", ["leaky_relu", "prelu"])
@pytest.mark.parametrize("init", ["he", "rai"])
def test_leaky_activations_are_never_born_dead(activation, init):
    for width in (1, 2, 5):
        for d in (2, 10, 50):
            row = borndead.born_dead_cell(activation, init, width, d, trials=300, points=65, seed=1)
            assert row["born_dead"] == 0 and row["p_born_dead"] == 0.0 and row["ci_low"] == 0.0


def test_width_one_relu_matches_the_sign_rule_exactly():
    # bias-free width 1: x = +-1 leave layer 1 as one positive signal, which layer l >= 2 passes iff w_l > 0
    for d in (2, 3, 6):
        params = draw("he", "relu", 1, d, 2000, seed=d)
        fast = depthnets.constant_on_grid(params, activations.build("relu"), borndead.test_points("relu", "he", 257))
        signs = torch.stack([w[:, 0, 0] for w, _ in params[1:-1]], dim=1)  # (T, d - 1)
        assert torch.equal(fast, (signs < 0).any(dim=1))


@pytest.mark.parametrize("d", [2, 3, 5, 10])
def test_width_one_exact_formula_within_the_wilson_interval(d):
    """10^4 nets per cell (the default sweep's count): the exact 1 - 2^-(L-1) lies in the 95% interval,
    and a two-sided exact binomial test does not reject it at 1% (scipy)."""
    from scipy.stats import binomtest

    row = borndead.born_dead_cell("relu", "he", 1, d, trials=10_000, points=257, seed=0)
    exact = 1 - 2.0 ** -(d - 1)
    assert row["theory_exact"] == exact
    assert row["ci_low"] <= exact <= row["ci_high"], row
    assert binomtest(row["born_dead"], row["trials"], exact).pvalue > 0.01, row
    # and the bounds derived for any width contain it at width 1
    assert row["theory_low"] <= exact <= row["theory_high"]


def test_exact_width_one_formula_is_the_bound_derivation_at_depth_two():
    """Width 2, depth 2 by hand (appendix): layer 1's two weights have equal signs w.p. 1/2 (one signal
    dead, the other killed by layer 2 w.p. 1/4) or opposite signs (two orthogonal signals, both killed
    w.p. (1/4)^2): P = 1/2 * 1/4 + 1/2 * 1/16 = 5/32, inside [1 - 15/16, 1 - (3/4)^2]."""
    from scipy.stats import binomtest

    row = borndead.born_dead_cell("relu", "he", 2, 2, trials=20_000, points=257, seed=3)
    assert row["theory_low"] == pytest.approx(1 / 16) and row["theory_high"] == pytest.approx(7 / 16)
    assert binomtest(row["born_dead"], row["trials"], 5 / 32).pvalue > 0.01, row


def test_relu_he_estimates_lie_within_the_derived_bounds():
    for width, d in [(2, 2), (2, 10), (3, 5), (5, 20)]:
        r = borndead.born_dead_cell("relu", "he", width, d, trials=2000, points=257, seed=0)
        assert r["theory_low"] <= r["theory_high"]
        assert r["ci_high"] >= r["theory_low"] and r["ci_low"] <= r["theory_high"], r


def test_two_point_test_equals_full_grid_for_bias_free_rectifiers():
    params = draw("he", "relu", 2, 8, 500)
    act = activations.build("relu")
    assert torch.equal(
        depthnets.constant_on_grid(params, act, borndead.test_points("relu", "he", 257)),
        depthnets.constant_on_grid(params, act, depthnets.grid(257)),
    )
    assert len(borndead.test_points("relu", "he", 257)) == 2 and len(borndead.test_points("relu", "rai", 257)) == 257
    assert len(borndead.test_points("gelu", "he", 257)) == 257  # not positively homogeneous


def test_coarse_stage_gives_the_same_answer_as_one_pass():
    for activation, init in [("relu", "rai"), ("relu", "he"), ("tanh", "rai")]:
        params = draw(init, activation, 3, 10, 200)
        act = activations.build(activation, num_features=3).double()
        x = depthnets.grid(257)
        assert torch.equal(depthnets.constant_on_grid(params, act, x), depthnets._constant_at(params, act, x))


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu", "gelu", "tanh", "elu"])
def test_forward_mode_equals_autograd_on_nn_sequential(activation):
    params = draw("rai", activation, 3, 4, 5)
    act = activations.build(activation, num_features=3).double()
    x = torch.linspace(-1.7, 1.7, 11, dtype=torch.float64)
    f, dfdx = depthnets.value_and_derivative(params, act, x)
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
    he = borndead.born_dead_cell("relu", "he", 2, 10, 1000, 257, seed=0)["p_born_dead"]
    rai = borndead.born_dead_cell("relu", "rai", 2, 10, 1000, 257, seed=0)["p_born_dead"]
    assert rai < he - 0.3


def test_collapse_born_dead_nets_end_constant_and_leaky_never_collapses():
    rows, nets = collapse.collapse_cells(
        "relu", ["he", "rai"], 2, 6, seeds=32, lr=1e-2, points=129, seed=0, min_steps=300, max_steps=300
    )
    assert [r["init"] for r in rows] == ["he", "rai"] and list(nets.columns) == collapse.COLLAPSE_NET_COLUMNS
    assert len(nets) == 64 and nets["born_dead"].sum() > 0
    # per network: every born-dead net ends constant, and its loss is the best constant's, Var(y)
    dead = nets[nets["born_dead"]]
    assert dead["ended_constant"].all()
    assert dead["final_loss"].to_numpy() == pytest.approx(rows[0]["constant_fit_loss"], rel=1e-3)
    for r in rows:
        assert r["born_dead_ended_constant"] == r["born_dead"] and r["collapsed"] >= r["born_dead"]
    # He init is bias-free: constant <=> both signals die, each in some layer; a dead layer implies constant
    assert (nets["born_dead"] | ~nets["dead_layer_at_init"]).all()
    leaky_rows, leaky = collapse.collapse_cells(
        "leaky_relu", ["he"], 2, 6, seeds=32, lr=1e-2, points=129, seed=0, min_steps=100, max_steps=100
    )
    assert leaky_rows[0]["collapsed"] == 0 and not leaky["born_dead"].any()
    with pytest.raises(ValueError, match="parameter-free"):
        collapse.collapse_cells("prelu", ["he"], 2, 3, seeds=2, lr=1e-2, points=9, seed=0, min_steps=1, max_steps=1)


def test_plateau_stop():
    """Deep width-1 He nets are (almost) all born dead: only the output bias learns, every loss flattens,
    and training stops at the first window after min_steps; with tol = 0 nothing is a plateau and it
    runs to the cap."""
    act = activations.build("relu")
    xt = depthnets.grid(65, torch.float32)
    yt = xt.abs()

    def fresh():
        return [(w.float(), b.float()) for w, b in draw("he", "relu", 1, 30, 16, seed=5)]

    final, steps, plateau = collapse.train_to_plateau(
        fresh(), act, xt, yt, lr=0.05, min_steps=400, max_steps=5000, window=100, tol=1e-6
    )
    assert 400 <= steps < 5000 and steps % 100 == 0 and plateau.all()
    assert final.double().numpy() == pytest.approx(float(yt.double().var(unbiased=False)), rel=1e-4)
    _, steps, plateau = collapse.train_to_plateau(
        fresh(), act, xt, yt, lr=0.05, min_steps=100, max_steps=700, window=100, tol=0.0
    )
    assert steps == 700 and not plateau.any()


def test_cli_quick_writes_both_tables(tmp_path):
    p = run_cli("--quick", "--out-dir", str(tmp_path), module="actlab.depth", timeout=120)
    assert p.returncode == 0, p.stderr
    born = pd.read_csv(tmp_path / "born_dead.csv")
    assert list(born.columns) == borndead.BORN_DEAD_COLUMNS
    assert len(born) == 2 * 2 * 3 * 3  # (relu + the leaky_relu control) x inits x widths x depths
    control = born[born.activation == "leaky_relu"]
    assert (control.role == "control").all() and (control.born_dead == 0).all() and (control.trials == 100).all()
    assert (born[born.activation == "relu"].trials == 200).all()
    coll = pd.read_csv(tmp_path / "collapse.csv")
    assert list(coll.columns) == collapse.COLLAPSE_COLUMNS and len(coll) == 2  # relu x inits
    assert (coll.steps >= 100).all() and (coll.born_dead_ended_constant == coll.born_dead).all()
    nets = pd.read_csv(tmp_path / "collapse_nets.csv")
    assert len(nets) == 2 * 16 and list(nets.columns) == collapse.COLLAPSE_NET_COLUMNS


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--trials", "0"], "--trials"),
        (["--widths", "2,x"], "--widths"),
        (["--activations", "nope"], "nope"),
        (["--inits", "xavier"], "xavier"),
        (["--collapse-activations", "prelu"], "prelu"),
        (["--bogus"], "--bogus"),
        (["--collapse-cells", "2by3"], "WIDTHxDEPTH"),
        (["--controls", "relu"], "share relu"),
        (["--collapse-min-steps", "10", "--collapse-max-steps", "5"], "--collapse-max-steps"),
        (["--control-trials", "0"], "--control-trials"),
    ],
)
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


# -----------------------------------------------------------------------------
# the born-dead rule of claim (c): paper/claims.py and the article's text say the same thing

PAPER = Path(__file__).resolve().parents[1] / "paper"


def _claims():
    sys.path.insert(0, str(PAPER))
    import claims

    return claims


def _table(ci_low_deep: float) -> pd.DataFrame:
    rows = []
    for d, (p, lo, hi) in {2: (0.05, 0.04, 0.06), 50: (ci_low_deep + 0.01, ci_low_deep, ci_low_deep + 0.02)}.items():
        for w in (1, 2):
            rows.append(
                {
                    "activation": "relu",
                    "role": "study",
                    "init": "he",
                    "depth": d,
                    "width": w,
                    "trials": 10_000,
                    "born_dead": int(p * 10_000),
                    "p_born_dead": p,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
    return pd.DataFrame(rows)


def test_often_born_dead_needs_the_lower_end_of_the_interval():
    claims = _claims()
    often = claims.bd.OFTEN
    assert claims.often_born_dead(often) and not claims.often_born_dead(often - 1e-9)
    # an interval that reaches the threshold only with its upper end is not "often"
    below = _table(often - 0.005)  # ci (0.245, 0.265) contains 0.25: reaches it, but its lower end is below
    assert below["ci_high"].max() >= often
    v = claims.born_dead_verdict(below, below)
    assert v.label == "cannot be decided (straddles the threshold)" and "with 95% confidence" in v.text
    # an interval wholly below the threshold contradicts the claim
    rare = _table(often - 0.05)
    assert rare["ci_high"].max() < often and claims.rarely_born_dead(rare["ci_high"].max())
    assert claims.born_dead_verdict(rare, rare).label == "contradicted"
    assert claims.born_dead_verdict(_table(often + 0.005), _table(often + 0.005)).label == "supported"


def test_methods_and_definitions_state_the_rule_the_code_applies():
    methods = (PAPER / "methods.md").read_text()
    # the threshold reaches the text only through glue from bookdata.OFTEN, and the rule is the lower end
    assert 'glue("often", bd.pct(bd.OFTEN, 0)' in methods
    rule = " ".join(methods[methods.index("networks are *often* born dead") :][:300].split())  # one line
    assert "lower end of the 95% CI" in rule and "at least {glue:text}`often`" in rule
    assert "reaches\n  {glue:text}`often`." not in methods  # the old, looser wording
    definitions = (PAPER / "definitions.md").read_text()
    born = definitions[definitions.index("## Born dead") :][:1500]
    # born dead = a constant function, tested as df/dx == 0; a dead layer is sufficient, not the definition
    assert "constant function" in born and "$df/dx$" in born and "a dead layer implies constant, not conversely" in born
    assert "{cite:p}`lu2020dying`: some layer outputs zero for every input" not in born


def test_padded_cells_train_as_they_would_alone():
    """collapse_group trains widths 2 and 3 in one batch, the narrow nets zero-padded: the padded units
    stay exactly 0 and each net ends as it does trained alone (same flags, same loss to float32 rounding)."""
    common = dict(seeds=8, lr=1e-2, points=65, seed=0, min_steps=150, max_steps=150)
    rows, together = collapse.collapse_group("relu", ["he", "rai"], [2, 3], 6, **common)
    alone = pd.concat(
        [collapse.collapse_cells("relu", ["he", "rai"], w, 6, **common)[1] for w in (2, 3)], ignore_index=True
    )
    assert [(r["width"], r["init"]) for r in rows] == [(2, "he"), (2, "rai"), (3, "he"), (3, "rai")]
    for col in ("born_dead", "dead_layer_at_init", "ended_constant"):
        assert together[col].tolist() == alone[col].tolist(), col
    assert together["final_loss"].to_numpy() == pytest.approx(alone["final_loss"].to_numpy(), rel=1e-3, abs=1e-6)
    # the padding itself: zero in, zero out, zero after training
    params = [(w.float(), b.float()) for w, b in collapse.pad(draw("rai", "relu", 2, 4, 5), 3)]
    xt = depthnets.grid(33, torch.float32)
    collapse.train_to_plateau(params, activations.build("relu"), xt, xt.abs(), 1e-2, 50, 50, 10, 0.0)
    for i, (w, b) in enumerate(params):
        if i < len(params) - 1:
            assert (w[:, 2] == 0).all() and (b[:, 2] == 0).all()  # the padded unit's row and bias
        if i > 0:
            assert (w[:, :, 2] == 0).all()  # the weights out of the padded unit
