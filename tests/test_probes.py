"""Probes on networks whose answers are known exactly: dead/dormant/saturated units, gradient flow."""

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from actlab import config, fit, models, probes, units
from actlab.data import IndexBatches, Splits
from actlab.models import CNN, MLP
from actlab.train import ConfigError, run

# A torch-internal deprecation raised inside Lightning itself (actlab.train filters it the same way).
pytestmark = pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*")


def stats(rows) -> dict:
    return {(r["layer"], r["metric"]): r["value"] for r in rows}


def one_layer(activation: str, w: torch.Tensor, b: torch.Tensor, **params) -> MLP:
    """in=3 -> Linear(n) -> act -> Linear(2), with fc1's weight/bias set."""
    m = MLP(3, 2, depth=1, width=len(b), activation=activation, act_params=params)
    with torch.no_grad():
        m.fc1.weight.copy_(w)
        m.fc1.bias.copy_(b)
    return m


def never_or_always(n: int, k: int, seed=0):
    """fc1 weight/bias for inputs in [-1, 1]^3: units 0..k-1 have z < 0 and units k.. z > 0 for every
    input (|w.x| <= ||w||_1 < bias margin)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, 3, generator=g)
    margin = w.abs().sum(1) + 0.5
    b = torch.where(torch.arange(n) < k, -margin, margin)
    return w, b


X = torch.rand(200, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1  # probe set in [-1, 1]^3


@pytest.mark.parametrize("k", [0, 3, 7, 8])
def test_k_of_n_relu_units_that_never_fire_are_dead(k):
    m = one_layer("relu", *never_or_always(8, k))
    s = stats(units.measure_units(m, X, "relu", tol=1e-6, tau=0.1))
    assert s["act1", "dead_fraction"] == k / 8
    assert s["act1", "active_per_sample"] == (8 - k) / 8
    assert s["act1", "n_units"] == 8 and s["act1", "probe_size"] == 200


@pytest.mark.parametrize("name", ["leaky_relu", "elu", "selu", "gelu", "silu", "mish", "softplus"])
def test_same_units_are_not_dead_for_non_vanishing_derivatives(name):
    # margins are O(1), so |f'(z)| >> tol for every one of these activations
    m = one_layer(name, *never_or_always(8, 3))
    s = stats(units.measure_units(m, X, name, tol=1e-6, tau=0.1))
    assert s["act1", "dead_fraction"] == 0.0


def test_relu_subgradient_at_zero_is_zero_so_a_constant_zero_unit_is_dead():
    w = torch.zeros(4, 3)
    b = torch.tensor([0.0, 0.0, 1.0, 1.0])  # z == 0 exactly for units 0, 1
    s = stats(units.measure_units(one_layer("relu", w, b), X, "relu", tol=0.0, tau=0.1))
    assert s["act1", "dead_fraction"] == 0.5


def test_constant_units_give_exact_means_and_dormant_fractions():
    # zero weights: z = bias for every sample. Units: z=-1 (x3), z=0, z=2 (x4).
    w, b = torch.zeros(8, 3), torch.tensor([-1.0, -1, -1, 0, 2, 2, 2, 2])
    relu = stats(units.measure_units(one_layer("relu", w, b), X, "relu", tol=1e-6, tau=0.1))
    assert relu["act1", "dead_fraction"] == 0.5
    assert relu["act1", "mean_activation"] == pytest.approx(1.0)  # 4 * 2 / 8
    assert relu["act1", "mean_abs_grad"] == 0.5
    assert relu["act1", "dormant_fraction"] == 0.5  # E|h| = 0 for the 4 dead units
    tau0 = stats(units.measure_units(one_layer("relu", w, b), X, "relu", tol=1e-6, tau=0.0))
    assert tau0["act1", "dormant_fraction"] == 0.5  # tau = 0: dormant == dead (Sokar et al.)

    lk = stats(units.measure_units(one_layer("leaky_relu", w, b), X, "leaky_relu", tol=1e-6, tau=0.1))
    assert lk["act1", "dead_fraction"] == 0.0
    assert lk["act1", "active_per_sample"] == 1.0
    # f'(-1) = f'(0) = 0.01 (torch's leaky subgradient at 0 is the slope), f'(2) = 1
    assert lk["act1", "mean_abs_grad"] == pytest.approx((4 * 0.01 + 4) / 8)
    assert lk["act1", "mean_activation"] == pytest.approx((3 * -0.01 + 8) / 8)
    # E|h| = 0.01 (x3), 0, 2 (x4); mean 1.00375; 0.1 * mean = 0.100375 -> 4 dormant
    assert lk["act1", "dormant_fraction"] == 0.5
    lk0 = stats(units.measure_units(one_layer("leaky_relu", w, b), X, "leaky_relu", tol=1e-6, tau=0.0))
    assert lk0["act1", "dormant_fraction"] == 1 / 8  # only the z == 0 unit has E|h| = 0
    assert lk["act1", "tol"] == 1e-6 and lk["act1", "tau"] == 0.1


def test_all_zero_layer_is_entirely_dormant():
    s = stats(units.measure_units(one_layer("relu", torch.zeros(4, 3), -torch.ones(4)), X, "relu", 1e-6, 0.1))
    assert s["act1", "dormant_fraction"] == 1.0 and s["act1", "dead_fraction"] == 1.0


def test_prelu_with_learned_slope_zero_is_dead_below_zero():
    w, b = never_or_always(6, 6)  # every unit has z < 0 on every input
    m = one_layer("prelu", w, b)
    with torch.no_grad():
        m.act1.weight.copy_(torch.tensor([0.0, 0.0, 0.25, 0.25, 0.25, -0.1]))
    s = stats(units.measure_units(m, X, "prelu", tol=1e-6, tau=0.1))
    assert s["act1", "dead_fraction"] == 2 / 6


def test_saturated_and_tolerance_dead_for_tanh_and_sigmoid():
    w = torch.zeros(5, 3)
    b = torch.tensor([3.0, -3.0, 20.0, 0.5, 0.0])  # |z| > 2.5 for units 0, 1, 2
    s = stats(units.measure_units(one_layer("tanh", w, b), X, "tanh", tol=1e-6, tau=0.1))
    assert s["act1", "saturated_fraction"] == 3 / 5
    assert s["act1", "saturate_at"] == 2.5
    # tanh'(3) = 9.9e-3 > tol; tanh'(20) = 0 in float32: dead only up to the tolerance
    assert s["act1", "dead_fraction"] == 1 / 5
    b = torch.tensor([6.0, -6.0, 4.0, 0.0, 0.0])  # sigmoid: |z| > 5 for units 0, 1
    s = stats(units.measure_units(one_layer("sigmoid", w, b), X, "sigmoid", tol=1e-6, tau=0.1))
    assert s["act1", "saturated_fraction"] == 2 / 5
    r = stats(units.measure_units(one_layer("relu", w, b), X, "relu", tol=1e-6, tau=0.1))
    assert ("act1", "saturated_fraction") not in r


# ------------------------------------------------------------------------------------------------
# cross-family measures: no gradient (|f'| <= 1% of the peak slope) and low variance (no information)


def test_peak_slopes_are_the_activations_own():
    import math

    from actlab.activations import SELU_ALPHA, SELU_LAMBDA

    assert units.peak_slope("relu") == 1.0 and units.peak_slope("tanh") == 1.0
    assert units.peak_slope("sigmoid") == pytest.approx(0.25)
    assert units.peak_slope("elu") == pytest.approx(1.0)
    assert units.peak_slope("selu") == pytest.approx(SELU_LAMBDA * SELU_ALPHA, rel=1e-4)  # z -> 0-
    # GELU: max of Phi(z) + z phi(z) at z = sqrt(2): Phi(sqrt 2) + sqrt(2) phi(sqrt 2)
    z = math.sqrt(2)
    gelu_peak = 0.5 * (1 + math.erf(z / math.sqrt(2))) + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    assert units.peak_slope("gelu") == pytest.approx(gelu_peak, rel=1e-6)


def stuck_and_healthy(n_stuck: int, z_stuck: float, n: int = 6):
    """fc1 weight/bias for inputs in [-1, 1]^3: units 0..n_stuck-1 have z = z_stuck on every input
    (zero weight), the others z = w.x with w ~ N(0, 1): varying around 0, the healthy regime."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(n, 3, generator=g)
    w[:n_stuck] = 0.0
    b = torch.zeros(n)
    b[:n_stuck] = z_stuck
    return w, b


@pytest.mark.parametrize(
    "name, z_stuck, dead, dormant",
    [
        ("relu", -2.0, 1, 1),  # dead ReLU: the classic measures see it too
        ("elu", -6.0, 0, 0),  # ELU stuck negative: f' = e^-6 = 0.0025 > tol, |h| ~ 1: neither dead nor dormant
        ("selu", -8.0, 0, 0),
        ("tanh", 4.0, 0, 0),  # saturated tanh: f' = 1 - tanh(4)^2 = 0.0013, |h| ~ 1
        ("tanh", -4.0, 0, 0),
        ("sigmoid", -7.0, 0, 1),  # sigmoid stuck low: f' = 0.0009 <= 0.01 * 0.25, h ~ 0.0009: dormant too
        ("gelu", -5.0, 0, 1),
        ("leaky_relu", -2.0, 0, 1),  # slope 0.01 = 1% of its peak: passes no more than that
    ],
)
def test_stuck_units_pass_no_gradient_and_carry_no_information_in_every_family(name, z_stuck, dead, dormant):
    m = one_layer(name, *stuck_and_healthy(2, z_stuck))
    s = stats(units.measure_units(m, X, name, tol=1e-6, tau=0.1))
    assert s["act1", "no_gradient_fraction"] == 2 / 6
    assert s["act1", "low_variance_fraction"] == 2 / 6
    # the classic measures, for contrast: they miss the stuck units of the non-rectifier families
    assert s["act1", "dead_fraction"] == dead * 2 / 6
    assert s["act1", "dormant_fraction"] == dormant * 2 / 6
    assert s["act1", "eps"] == units.NO_GRADIENT_EPS and s["act1", "delta"] == units.LOW_VARIANCE_DELTA
    assert s["act1", "peak_slope"] == units.peak_slope(name)


@pytest.mark.parametrize(
    "name", ["relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "mish", "softplus", "tanh", "sigmoid"]
)
def test_healthy_units_are_in_neither_cross_family_measure(name):
    w, b = stuck_and_healthy(0, 0.0)
    s = stats(units.measure_units(one_layer(name, w, b), X, name, tol=1e-6, tau=0.1))
    assert s["act1", "no_gradient_fraction"] == 0.0
    assert s["act1", "low_variance_fraction"] == 0.0


def test_low_variance_is_relative_to_the_layer_and_counts_a_constant_layer_entirely():
    # z = scale * x_0: Var(h) = scale^2 Var(x_0) for the identity-like region of leaky ReLU (z > 0)
    scales = torch.tensor([1.0, 1.0, 1.0, 0.05, 0.2])  # variances 1, 1, 1, 0.0025, 0.04 (x Var x_0)
    w = torch.zeros(5, 3)
    w[:, 0] = scales
    b = torch.full((5,), 2.0)  # z > 0 on every input: h = z exactly
    act = one_layer("leaky_relu", w, b).act1
    z = X @ w.T + b
    got = units.unit_stats(act, z, 1e-6, 0.1, None, peak=1.0)
    var = (scales**2).double()
    expected = int((var <= 0.01 * var.mean()).sum())  # mean 0.6085: threshold 0.006085 -> only 0.0025
    assert expected == 1 and got["low_variance_fraction"][0].item() == 1
    const = units.unit_stats(act, torch.full((50, 4), 3.0), 1e-6, 0.1, None, peak=1.0)
    assert const["low_variance_fraction"][0].item() == 4  # 0 <= 0.01 * 0


def test_cnn_no_gradient_needs_every_position():
    m = CNN((1, 8, 8), 3, depth=1, width=2, fc_width=5, activation="tanh", act_params={})
    with torch.no_grad():
        m.conv1.weight[:] = 0.0
        m.conv1.bias[:] = torch.tensor([5.0, 0.0])  # channel 0 saturated everywhere, channel 1 at z = 0
    s = stats(units.measure_units(m, torch.rand(8, 1, 8, 8), "tanh", tol=1e-6, tau=0.1))
    assert s["act1", "no_gradient_fraction"] == 0.5


def test_cnn_unit_is_a_channel():
    m = CNN((1, 8, 8), 3, depth=1, width=4, fc_width=5, activation="relu", act_params={})
    with torch.no_grad():
        m.conv1.weight[:2] = 0.0
        m.conv1.bias[:] = torch.tensor([-1.0, 0.0, 0.0, 0.0])  # channels 0, 1: z <= 0 everywhere
        m.conv1.weight[2:] = m.conv1.weight[2:].abs()
        m.conv1.bias[2:] = 0.1  # non-negative input: channels 2, 3 fire everywhere
    x = torch.rand(16, 1, 8, 8)
    s = stats(units.measure_units(m, x, "relu", tol=1e-6, tau=0.1))
    assert s["act1", "dead_fraction"] == 0.5
    assert s["act1", "active_per_sample"] == 0.5
    assert s["act1", "n_units"] == 4
    assert set(k[0] for k in s) == {"act1", "act2"}


def test_measurement_is_in_eval_mode_and_restores_train_mode():
    m = nn.Sequential()
    m.add_module("fc1", nn.Linear(3, 4))
    m.add_module("drop", nn.Dropout(0.9))
    m.add_module("act1", nn.ReLU())
    m.train()
    with torch.no_grad():
        m.fc1.weight.zero_()
        m.fc1.bias.fill_(1.0)
    s = stats(units.measure_units(m, X, "relu", tol=1e-6, tau=0.1))
    assert s["act1", "dead_fraction"] == 0.0  # with dropout active most units would look dead
    assert s["act1", "mean_activation"] == 1.0
    assert m.training and m.drop.training


# ------------------------------------------------------------------------------------------------
# gradient flow, against a separate autograd computation


def tiny_fit(compose, tmp_path, steps_per_epoch: int, epochs: int, every: int, lr=0.1):
    """SGD (no momentum), batches of 8, on a 3-4-4-2 ReLU MLP trained by the engine (K=1, as a run) with
    grad flow on; returns (rows, initial net, batch order seed)."""
    torch.manual_seed(0)
    x = torch.randn(8 * steps_per_epoch, 3)
    y = torch.randint(0, 2, (8 * steps_per_epoch,))
    splits = Splits(x, y, x[:4], y[:4], x[:4], y[:4], task="classification", num_outputs=2)
    cfg = compose(
        "activation=relu",
        "model.depth=2",
        "model.width=4",
        "optimizer=sgd",
        f"optimizer.lr={lr}",
        "optimizer.momentum=0",
        "data.batch_size=8",
        f"trainer.max_epochs={epochs}",
        f"probes.grad_flow.every_n_steps={every}",
        "probes.dead_units.enabled=false",
        "trainer.progress=quiet",
        f"run_dir={tmp_path}",
    )
    pl.seed_everything(cfg.seed, verbose=False)  # the initialisation the engine draws for this seed
    net0 = models.build(cfg.model, (3,), 2, "relu", {})
    fit.fit_many([cfg], splits=splits, job=False)
    return pd.read_csv(tmp_path / "grad_flow.csv"), net0, (splits, 8, cfg.seed)


def manual_steps(net, order, lr, n_steps):
    """Replay the same batches by hand: per step {layer: (grad_norm, grad_abs_mean, weight_norm, update_ratio,
    grad_rms)}."""
    s, batch_size, seed = order
    batches = IndexBatches(s.x_train, s.y_train, batch_size, shuffle=True, seed=seed)
    out, step = [], 0
    while step < n_steps:
        for xb, yb in batches:
            loss = nn.functional.cross_entropy(net(xb), yb)
            params = list(net.parameters())
            grads = torch.autograd.grad(loss, params)
            rec = {}
            with torch.no_grad():
                named = dict(net.named_parameters())
                g_of = {n: g for (n, _), g in zip(net.named_parameters(), grads)}
                for layer in ("fc1", "fc2", "out"):
                    w, g = named[f"{layer}.weight"], g_of[f"{layer}.weight"]
                    w_before = w.clone()
                    rec[layer] = (
                        g.norm().item(),
                        g.abs().mean().item(),
                        w_before.norm().item(),
                        (lr * g).norm().item() / w_before.norm().item(),
                        g.pow(2).mean().sqrt().item(),
                    )
                for p, g in zip(params, grads):
                    p -= lr * g
            out.append(rec)
            step += 1
            if step == n_steps:
                break
    return out


def check(rows, manual, step):
    r = rows[rows.step == step]
    for layer, vals in manual[step - 1].items():
        for metric, v in zip(probes.GRAD_METRICS, vals):
            got = r[(r.layer == layer) & (r.metric == metric)].value.item()
            assert got == pytest.approx(v, rel=1e-4), (step, layer, metric)
    ratio = r[r.metric == "grad_norm_first_over_last"]
    assert ratio.layer.item() == "fc1/out"
    assert ratio.value.item() == pytest.approx(manual[step - 1]["fc1"][0] / manual[step - 1]["out"][0], rel=1e-4)
    rms = r[r.metric == "grad_rms_first_over_last"]
    assert rms.layer.item() == "fc1/out"
    assert rms.value.item() == pytest.approx(manual[step - 1]["fc1"][4] / manual[step - 1]["out"][4], rel=1e-4)


def test_grad_rms_is_norm_over_sqrt_numel_so_the_layer_ratio_is_free_of_matrix_size():
    """The same per-weight gradient in a 64x128 and a 128x10 matrix: the norm ratio is the size ratio
    sqrt(8192 / 1280) = 2.53, the RMS ratio 1."""
    grads = [torch.full((128, 64), 0.003), torch.full((10, 128), -0.003)]
    w = [torch.ones(128, 64), torch.ones(10, 128)]
    vals = probes.grad_flow_stats([g[None] for g in grads], [v[None] for v in w], [v[None] for v in w])[..., 0]
    assert vals.shape == (len(probes.GRAD_METRICS), 2)  # (5, L) of the one model
    rms = vals[probes.GRAD_METRICS.index("grad_rms")]
    assert rms.tolist() == pytest.approx([g.norm().item() / g.numel() ** 0.5 for g in grads])
    assert rms.tolist() == pytest.approx([0.003, 0.003])
    cb = probes.GradFlow("unused.csv")
    cb.add_rows(1, 1, ["fc1", "out"], vals.double())
    got = {r["metric"]: r["value"] for r in cb.rows if r["layer"] == "fc1/out"}
    assert got["grad_norm_first_over_last"] == pytest.approx((8192 / 1280) ** 0.5)
    assert got["grad_rms_first_over_last"] == pytest.approx(1.0)


def test_grad_norms_and_update_ratio_equal_a_manual_computation(compose, tmp_path):
    rows, net0, order = tiny_fit(compose, tmp_path, steps_per_epoch=3, epochs=2, every=1)
    manual = manual_steps(net0, order, lr=0.1, n_steps=6)
    assert sorted(rows.step.unique()) == [1, 2, 3, 4, 5, 6]
    assert rows[rows.step == 4].epoch.unique().tolist() == [2]
    for step in range(1, 7):
        check(rows, manual, step)


def test_first_interval_and_last_step_are_recorded(compose, tmp_path):
    rows, net0, order = tiny_fit(compose, tmp_path, steps_per_epoch=3, epochs=3, every=4)
    assert sorted(rows.step.unique()) == [1, 4, 8, 9]  # 9 = the last step, not a multiple of 4
    assert list(rows.columns) == ["step", "epoch", "layer", "metric", "value"]
    manual = manual_steps(net0, order, lr=0.1, n_steps=9)
    check(rows, manual, 9)  # the last step of the run, recorded although 9 is no multiple of 4
    check(rows, manual, 1)


# ------------------------------------------------------------------------------------------------
# real runs through actlab.train


def test_short_training_run_writes_both_tables(compose, tmp_path):
    run(compose("activation=relu", "trainer.max_epochs=2", f"run_dir={tmp_path}", "probes.dead_units.probe_size=100"))
    d = pd.read_csv(tmp_path / "dead_units.csv")
    assert list(d.columns) == ["epoch", "layer", "metric", "value"]
    assert sorted(d.epoch.unique()) == [0, 1, 2]
    assert sorted(d.layer.unique()) == ["act1", "act2"]
    assert {
        "dead_fraction",
        "dormant_fraction",
        "mean_activation",
        "mean_abs_grad",
        "active_per_sample",
        "tol",
        "tau",
    } <= set(d.metric)
    assert (d[d.metric == "probe_size"].value == 100).all()
    frac = d[d.metric.str.endswith("_fraction")].value
    assert ((frac >= 0) & (frac <= 1)).all()
    g = pd.read_csv(tmp_path / "grad_flow.csv")
    assert list(g.columns) == ["step", "epoch", "layer", "metric", "value"]
    steps_per_epoch = 17  # digits: 1078 training images / batch 64
    assert sorted(g.step.unique()) == [1, 25, 2 * steps_per_epoch]
    assert set(g.layer) == {"fc1", "fc2", "out", "fc1/out"}
    assert g[g.step == 2 * steps_per_epoch].epoch.unique().tolist() == [2]
    assert (g[g.metric == "grad_norm"].value > 0).all()


def test_probes_off_write_nothing_and_bad_values_are_config_errors(compose, tmp_path):
    cfg = compose("probes.dead_units.enabled=false", "probes.grad_flow.enabled=false")
    assert probes.callbacks(cfg.probes, tmp_path, "relu") == []
    kinds = [type(c) for c in probes.callbacks(compose().probes, tmp_path, "relu")]
    assert kinds == [probes.DeadUnits, probes.GradFlow]
    for bad, msg in [
        ("probes.dead_units.tau=-0.1", "tau"),
        ("probes.dead_units.probe_size=0", "probe_size"),
        ("probes.grad_flow.every_n_steps=0", "every_n_steps"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            probes.callbacks(compose(bad).probes, tmp_path, "relu")
    # a type is the schema's (actlab.schema): refused when the config composes, before any probe is built
    with pytest.raises(ConfigError, match=r"probes.dead_units.every_n_epochs must be an integer >= 1, got 1.5"):
        config.compose(["probes.dead_units.every_n_epochs=1.5"])
