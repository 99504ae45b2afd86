"""The vectorised trainer (actlab.vectorized) = K separate runs, to floating-point tolerance.

The cross-path comparisons (vectorised vs separate runs, hand-written backward vs autograd) run in
float64 (`trainer.precision=64-true`) and ask for agreement to RTOL64 = 1e-10 relative; one test runs
the default float32 and asks for agreement to RTOL32, derived below. Neither tolerance depends on the
CPU's vector units: `make test` repeats these tests under another ATEN_CPU_CAPABILITY
(scripts/numerics-second-pass.sh; docs/reliability.md, "Numerics"). The tests marked `numerics` are
that second pass: the ones that prove the point (float64 and float32 tolerances, the hand-written
backward, determinism) without the variations that need no second CPU to be trusted.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli

from actlab import batches, checks, data, fastpaths, fit, models, stacked_mlp, train
from actlab import losses as loss_fns

# threads=1: tiny models; two OpenMP threads on a shared 2-core machine mostly wait on each other
FAST = ["trainer.max_epochs=2", "trainer.progress=quiet", "trainer.threads=1", "probes.grad_flow.every_n_steps=5"]
F64 = "trainer.precision=64-true"
METRICS = ["train_loss", "train_acc", "val_loss", "val_acc"]

# float64: the two paths compute the same sums in different orders (one batched matmul for K models vs
# K nn.Linear, fused vs for-loop Adam, the shared evaluation GEMM): each op differs by a few ulps
# (2.2e-16). Measured over these 2-epoch runs with the AVX2 and the generic kernels: <= 5e-16 on
# metrics.csv and the summaries, <= 8e-15 on the probes (grad_flow's norms of differences). 1e-10 leaves
# 4 orders of magnitude for other CPUs and still fails a real difference by orders of magnitude: a
# planted subtle one, weight decay on the biases too (test_mixed_activations_..., weight_decay=1e-2),
# moves the epoch metrics by up to 1.6e-5 relative. A pre-activation within float64 rounding of a ReLU
# kink (which would switch the slope: RTOL32 below) is 5e8x rarer than in float32: < 1e-9 per run.
# ATOL64 only for values that are 0.
RTOL64, ATOL64 = 1e-10, 1e-13


def _cfgs(compose, tmp, sub, runs, extra=()):
    """runs: list of (seed, activation)."""
    return [compose(f"seed={s}", f"activation={a}", f"run_dir={tmp}/{sub}/{a}-{s}", *FAST, *extra) for s, a in runs]


def _assert_same_run(vec_dir, one_dir, vec_summary, one_summary, rtol=RTOL64, atol=ATOL64):
    """The two runs' metrics, summaries and probe tables agree to (rtol, atol) (float64 by default)."""
    a, b = (pd.read_csv(d / "metrics.csv") for d in (vec_dir, one_dir))
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    np.testing.assert_allclose(a[METRICS].to_numpy(), b[METRICS].to_numpy(), rtol=rtol, atol=atol)
    for key in ("test_acc", "test_loss", "best_val_acc", "best_val_loss"):
        assert vec_summary[key] == pytest.approx(one_summary[key], rel=rtol, abs=atol, nan_ok=True), key
    for key in ("seed", "activation", "act_params", "epochs", "diverged", "n_params", "init", "run_dir"):
        assert vec_summary[key] == (str(vec_dir) if key == "run_dir" else one_summary[key]), key
    for name, keys in (
        ("dead_units.csv", ["epoch", "layer", "metric"]),
        ("grad_flow.csv", ["step", "epoch", "layer", "metric"]),
    ):
        a, b = (pd.read_csv(d / name) for d in (vec_dir, one_dir))
        pd.testing.assert_frame_equal(a[keys], b[keys])  # same rows, same order
        np.testing.assert_allclose(a["value"], b["value"], rtol=rtol, atol=atol, err_msg=name)


def _separate(cfgs):
    return [train.run(c) for c in cfgs]


def _assert_float64(run_dir):
    """The run really trained in float64: metrics hold more digits than a float32 has."""
    loss = pd.read_csv(run_dir / "metrics.csv")["train_loss"].to_numpy()
    assert not np.array_equal(loss, loss.astype(np.float32).astype(np.float64)), run_dir


@pytest.mark.numerics
def test_k3_matches_three_separate_runs(compose, tmp_path):
    runs = [(0, "relu"), (1, "relu"), (2, "relu")]
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", runs, [F64]))
    one = _separate(_cfgs(compose, tmp_path, "one", runs, [F64]))
    for (s, a), v, o in zip(runs, vec, one):
        assert v["vectorized"]["k"] == 3
        _assert_float64(tmp_path / "vec" / f"{a}-{s}")
        _assert_float64(tmp_path / "one" / f"{a}-{s}")
        _assert_same_run(tmp_path / "vec" / f"{a}-{s}", tmp_path / "one" / f"{a}-{s}", v, o)
    assert len({v["test_loss"] for v in vec}) == 3  # three different models


# float32 (the default precision), the two paths agree only as far as float32 rounding lets two summation
# orders agree, and how far that is depends on the activation:
# - Smooth activations (tanh, gelu, silu): measured over 2-epoch digits runs (34 Adam steps), seeds 0-5,
#   AVX2 and generic kernels, every float32 run (vectorised or separate) is within 2.9e-7 relative of the
#   same run in float64, and the two float32 paths within 3.3e-7 of each other (~5 float32 ulps of the
#   loss). That is what Adam makes of the rounding: perturbing every gradient element by 1 ulp
#   (nextafter, random sign) at every step of a separate run moves its epoch losses by <= 2.2e-7
#   relative (48 runs: tanh, gelu, silu, leaky_relu x seeds 0-3 x 3 perturbations), i.e. Adam amplifies
#   a 1-ulp gradient difference to at most ~4 ulps of the loss over the run. RTOL32 = 3e-6 is ~10x the
#   largest difference seen: CPU-proof, and 5x below the planted bias-decay discrepancy above (1.6e-5).
#   Accuracies: an argmax within rounding of a tie may flip one sample, so they agree to ATOL32_ACC = one
#   of the 359 validation (or test) samples.
# - Piecewise-linear activations (relu, leaky_relu, prelu): a pre-activation within float32 rounding of
#   the kink (|z| ~ 1e-7 |terms|) takes the other slope in one path, which changes one sample's
#   contribution to that unit's gradient by (1 - a) dh x / B, not by an ulp; Adam turns it into a
#   different update of the whole weight row. Seen in 1 of 32 separate runs (leaky_relu seed 1, at step
#   5: val_loss 8.3e-5 from its float64 run; on AVX2 the vectorised run missed the kink and stayed within
#   8e-8 of float64, with the generic kernels both paths took it). Such a jump has no small bound (it
#   depends on the unit and Adam's state, and they add up over longer runs), so the piecewise-linear
#   activations are compared in float64 (above) only.
RTOL32, ATOL32_ACC = 3e-6, 1 / 359 + 1e-9


@pytest.mark.numerics
def test_float32_agrees_to_float32_rounding(compose, tmp_path):
    """The default precision: three smooth-activation models vectorised vs three separate float32 runs,
    to RTOL32 (derived above). The probe tables are compared in the float64 tests."""
    runs = [(0, "tanh"), (1, "gelu"), (2, "silu")]
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", runs))
    one = _separate(_cfgs(compose, tmp_path, "one", runs))
    for (s, a), v, o in zip(runs, vec, one):
        x, y = (pd.read_csv(tmp_path / d / f"{a}-{s}" / "metrics.csv") for d in ("vec", "one"))
        assert len(x) == len(y) == 2
        np.testing.assert_allclose(x[["train_loss", "val_loss"]], y[["train_loss", "val_loss"]], rtol=RTOL32, atol=0)
        np.testing.assert_allclose(x[["train_acc", "val_acc"]], y[["train_acc", "val_acc"]], rtol=0, atol=ATOL32_ACC)
        assert v["test_loss"] == pytest.approx(o["test_loss"], rel=RTOL32, abs=0)
        assert v["test_acc"] == pytest.approx(o["test_acc"], rel=0, abs=ATOL32_ACC)


def test_sgd_cosine_weight_decay(compose, tmp_path):
    runs = [(0, "leaky_relu"), (1, "leaky_relu")]
    extra = ("optimizer=sgd", "optimizer.schedule=cosine", "optimizer.weight_decay=1e-3", F64)
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", runs, extra))
    one = _separate(_cfgs(compose, tmp_path, "one", runs, extra))
    for (s, a), v, o in zip(runs, vec, one):
        _assert_same_run(tmp_path / "vec" / f"{a}-{s}", tmp_path / "one" / f"{a}-{s}", v, o)


@pytest.mark.numerics
def test_mixed_activations_prelu_and_weight_decay(compose, tmp_path):
    """Different activations in one run (grouped internally), PReLU's learned slope per model,
    weight decay on weights only; summaries come back in the order asked."""
    runs = [(3, "prelu"), (0, "tanh"), (1, "prelu")]
    extra = ("optimizer.weight_decay=1e-2", F64)
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", runs, extra))
    one = _separate(_cfgs(compose, tmp_path, "one", runs, extra))
    assert [(v["seed"], v["activation"]) for v in vec] == runs
    for (s, a), v, o in zip(runs, vec, one):
        _assert_same_run(tmp_path / "vec" / f"{a}-{s}", tmp_path / "one" / f"{a}-{s}", v, o)


def test_regression_task(compose, tmp_path):
    runs = [(0, "relu"), (1, "relu")]
    extra = ("data=synthetic_abs", "model.width=16", F64)
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", runs, extra))
    one = _separate(_cfgs(compose, tmp_path, "one", runs, extra))
    for (s, a), v, o in zip(runs, vec, one):
        assert math.isnan(v["test_acc"])
        _assert_same_run(tmp_path / "vec" / f"{a}-{s}", tmp_path / "one" / f"{a}-{s}", v, o)


def test_one_diverged_model_does_not_stop_the_others(compose, tmp_path, monkeypatch):
    """Seed 1 starts with an infinite weight: its loss is NaN from step 1. Its single run diverges
    and stops after epoch 1; in the vectorised run it is marked diverged there, the others go on."""
    build = models.build

    def poisoned(*args, **kwargs):
        net = build(*args, **kwargs)
        if torch.initial_seed() == 1:  # seed_everything(1) ran just before
            with torch.no_grad():
                net.fc1.weight[0, 0] = math.inf
        return net

    monkeypatch.setattr(models, "build", poisoned)
    runs = [(0, "relu"), (1, "relu"), (2, "relu")]
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", runs, [F64]))
    one = _separate(_cfgs(compose, tmp_path, "one", runs, [F64]))
    assert [v["diverged"] for v in vec] == [False, True, False] == [o["diverged"] for o in one]
    assert vec[1]["epochs"] == 1 and math.isnan(vec[1]["test_acc"]) and vec[0]["epochs"] == 2
    for (s, a), v, o in zip(runs, vec, one):
        _assert_same_run(tmp_path / "vec" / f"{a}-{s}", tmp_path / "one" / f"{a}-{s}", v, o)
    assert json.loads((tmp_path / "vec" / "relu-1" / "summary.json").read_text())["diverged"] is True


@pytest.mark.numerics
def test_deterministic(compose, tmp_path):
    """Same path twice (default float32): bit-identical, on any CPU."""
    runs = [(0, "relu"), (1, "silu")]
    for sub in ("a", "b"):
        fit.fit_many(_cfgs(compose, tmp_path, sub, runs))
    for s, a in runs:
        for name in ("metrics.csv", "dead_units.csv", "grad_flow.csv"):
            x, y = (pd.read_csv(tmp_path / sub / f"{a}-{s}" / name) for sub in ("a", "b"))
            pd.testing.assert_frame_equal(
                x.drop(columns="seconds", errors="ignore"), y.drop(columns="seconds", errors="ignore"), check_exact=True
            )


def test_data_order_is_the_single_runs():
    x, y = torch.arange(103.0)[:, None], torch.arange(103)
    stacked = batches.StackedBatches(103, 10, [0, 5], chunk=4, device="cpu")
    refs = [data.IndexBatches(x, y, 10, shuffle=True, seed=s) for s in (0, 5)]
    assert len(stacked) == 3
    for _ in range(2):  # two epochs: the generators advance as IndexBatches' do
        got = [idx for chunk in stacked for idx in chunk]  # (K, b) each
        for k, ref in enumerate(refs):
            assert [g[k].tolist() for g in got] == [yb.tolist() for _, yb in ref]


def _stack(names, depth=2, out=4, seed=0, params=None):
    """A StackedMLP of one model per activation name (depth x 16 hidden, 12 inputs), grouped as fit_many
    does, in float64."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"name": "mlp", "depth": depth, "width": 16, "fc_width": None, "init": None})
    torch.manual_seed(seed)
    nets = [models.build(cfg, (12,), out, n, params or {}) for n in names]
    for net in nets:  # PReLU slopes away from their init, so that a wrong slope gradient shows
        for m in net.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.data.uniform_(0.05, 0.5)
    return stacked_mlp.StackedMLP(nets, fit.consecutive_groups(names)).double()


HAND = ["relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "mish", "softplus", "tanh", "sigmoid"]


@pytest.mark.numerics
@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("names", [[a, a] for a in HAND] + [HAND, ["relu", "prelu", "prelu", "tanh", "tanh"]])
def test_hand_backward_is_autograd(names, task):
    """losses_and_grads = per_model_losses + autograd.grad, for every activation with a kernel in
    ACT_BACKWARD and PReLU (slope gradients included), alone and mixed, two hidden layers,
    classification and regression. In float64: one step, the same kernels in a different order (the
    hand-written chain vs autograd's), so the two agree to a few ulps; 1e-12 relative is CPU-proof and
    a wrong term (a missing slope factor, a transposed product) is off by >= 1e-3."""
    _check_hand_backward(_stack(names, out=4 if task == "classification" else 3), task)


def _check_hand_backward(net, task):
    assert net.hand_backward()
    g = torch.Generator().manual_seed(1)
    k, b = net.k, 9
    x = 2 * torch.randn(k, b, 12, generator=g, dtype=torch.float64)
    y = (
        torch.randint(0, 4, (k, b), generator=g)
        if task == "classification"
        else torch.randn(k, b, 3, generator=g, dtype=torch.float64)
    )
    losses, correct, grads = net.losses_and_grads(x, y, task)
    params = [p for ps in net.decay_groups() for p in ps]
    ref_losses, ref_correct = loss_fns.per_model_losses(net(x), y, task, False)
    ref_grads = torch.autograd.grad(ref_losses.sum(), params)
    assert losses.dtype == torch.float64 and all(gr.dtype == torch.float64 for gr in grads)
    torch.testing.assert_close(losses, ref_losses.detach(), rtol=1e-12, atol=1e-14)
    assert (correct is None) == (ref_correct is None)
    if correct is not None:
        assert torch.equal(correct, ref_correct)
    assert len(grads) == len(ref_grads)
    for got, ref in zip(grads, ref_grads):
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)
    assert all(not p.requires_grad or p.grad is None for p in params)  # nothing accumulated


@pytest.mark.numerics
@pytest.mark.parametrize(
    "name, params",
    [
        ("gelu", {"approximate": "tanh"}),
        ("prelu", {"mode": "layer"}),
        ("leaky_relu", {"negative_slope": 0.2}),
        ("elu", {"alpha": 0.5}),
        ("softplus", {"beta": 2.0, "threshold": 1.0}),
    ],
)
def test_hand_backward_activation_parameters(name, params):
    _check_hand_backward(_stack([name, name], params=params), "classification")


def test_hand_backward_is_used_where_it_applies(compose, tmp_path, monkeypatch):
    """fp32 and fp64 runs use it; bf16 autocast, and a stack with an activation missing from
    ACT_BACKWARD, go through autograd."""
    calls = []
    orig = stacked_mlp.StackedMLP.losses_and_grads
    monkeypatch.setattr(stacked_mlp.StackedMLP, "losses_and_grads", lambda self, *a: calls.append(1) or orig(self, *a))
    fit.fit_many(_cfgs(compose, tmp_path, "fp32", [(0, "relu"), (1, "gelu")]))
    assert len(calls) > 0
    n = len(calls)
    fit.fit_many(_cfgs(compose, tmp_path, "fp64", [(0, "relu"), (1, "gelu")], [F64]))
    assert len(calls) == 2 * n
    n = len(calls)
    fit.fit_many(_cfgs(compose, tmp_path, "bf16", [(0, "relu"), (1, "relu")], ["trainer.precision=bf16-mixed"]))
    monkeypatch.delitem(fastpaths.ACT_BACKWARD, torch.nn.ReLU)  # as an activation registered without one
    fit.fit_many(_cfgs(compose, tmp_path, "unlisted", [(0, "relu"), (1, "prelu")]))
    assert len(calls) == n


_OPTIMIZERS = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2, fused=True),
    "adam, two groups, L2 decay": lambda ps: torch.optim.Adam(
        [{"params": ps[:1], "weight_decay": 0.1}, {"params": ps[1:], "weight_decay": 0.0}], lr=1e-2, fused=True
    ),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, fused=True),
    "adam, not fused": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adam, float64": lambda ps: torch.optim.Adam(ps, lr=1e-2, fused=True),  # (test: float64 parameters)
    "sgd": lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, weight_decay=0.1),
}


@pytest.mark.numerics
@pytest.mark.parametrize("name", list(_OPTIMIZERS))
def test_direct_step_is_opt_step(name):
    """DirectStep(grads) = setting .grad and opt.step(), bit for bit (the same kernel, float32 or
    float64), also after the optimizer's state is replaced (a resume loads a checkpoint into it)."""
    make = _OPTIMIZERS[name]
    g = torch.Generator().manual_seed(0)
    dtype = torch.float64 if "float64" in name else torch.float32
    ref = [torch.nn.Parameter(torch.randn(*shape, generator=g, dtype=dtype)) for shape in ((3, 4), (4,), (2,))]
    mine = [torch.nn.Parameter(p.detach().clone()) for p in ref]
    opt_ref, opt = make(ref), make(mine)
    step = fastpaths.DirectStep(opt, mine)
    for i in range(6):
        grads = [torch.randn(p.shape, generator=g, dtype=dtype) for p in ref]
        for p, gr in zip(ref, grads):
            p.grad = gr.clone()
        opt_ref.step()
        step(tuple(grads))
        if i == 2:  # a resume: new state tensors; the cached lists must follow
            opt.load_state_dict(copy.deepcopy(opt_ref.state_dict()))
        for a, b in zip(ref, mine):
            assert torch.equal(a, b), (name, i)
        assert all(p.grad is None for p in mine)
    # the fused Adam path really bypassed opt.step() once its state existed
    assert (step._state is opt.state) == (name in ("adam", "adam, two groups, L2 decay", "adamw", "adam, float64"))
    for a, b in zip(opt_ref.state_dict()["state"].values(), opt.state_dict()["state"].values()):
        for key in a:
            assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), (name, key)


@pytest.mark.numerics
def test_public_fallbacks_train_the_same_models(compose, tmp_path, monkeypatch):
    """Every private fast path off (actlab.fastpaths.USE: autograd instead of aten's backward kernels,
    Adam.step instead of the fused kernels, no mallopt): the same runs, to float64 rounding."""
    runs = [(0, "gelu"), (1, "prelu")]
    fast = fit.fit_many(_cfgs(compose, tmp_path, "fast", runs, [F64]))
    for key in fastpaths.USE:
        monkeypatch.setitem(fastpaths.USE, key, False)
    calls, step = [], torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: calls.append(1) or step(self, *a, **k))
    public = fit.fit_many(_cfgs(compose, tmp_path, "public", runs, [F64]))
    assert len(calls) == 2 * 17  # every step through the public Adam.step (digits: 17 batches an epoch)
    for (s, a), f, p in zip(runs, fast, public):
        _assert_same_run(tmp_path / "fast" / f"{a}-{s}", tmp_path / "public" / f"{a}-{s}", f, p)


def test_unsupported_and_incompatible(compose, tmp_path):
    assert checks.vectorizable(compose("model=cnn")) == (True, "")
    ok, why = checks.vectorizable(compose("trainer.precision=16-mixed"))
    assert not ok and "fp16" in why
    with pytest.raises(train.ConfigError, match="differ only"):
        fit.fit_many(
            [compose("seed=0", f"run_dir={tmp_path}/a"), compose("seed=1", "model.width=8", f"run_dir={tmp_path}/b")]
        )


CNN_SMALL = ("model=cnn", "model.width=4", "model.fc_width=16", "trainer.max_epochs=2", "data.batch_size=128")


@pytest.mark.numerics
def test_cnn_k3_matches_three_separate_runs_2d(compose, tmp_path):
    """The CNN on 8x8 images (digits), vectorised through vmap (grouped convolutions): K=3 in one engine
    = three K=1 runs, in float64, metrics, summaries and both probe tables."""
    runs = [(0, "relu"), (1, "prelu"), (2, "relu")]
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", runs, [F64, *CNN_SMALL]))
    one = _separate(_cfgs(compose, tmp_path, "one", runs, [F64, *CNN_SMALL]))
    for (s, a), v, o in zip(runs, vec, one):
        _assert_float64(tmp_path / "vec" / f"{a}-{s}")
        _assert_same_run(tmp_path / "vec" / f"{a}-{s}", tmp_path / "one" / f"{a}-{s}", v, o)
    assert set(pd.read_csv(tmp_path / "vec" / "relu-0" / "grad_flow.csv").layer) >= {"conv1", "out"}
    assert len({v["test_loss"] for v in vec}) == 3


def _signals(n: int = 600, length: int = 40, classes: int = 10, seed: int = 0) -> data.Splits:
    """Random 1-D signals (N, 40), MNIST-1D's shape, with labels a function of the signal."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length, generator=g)
    y = (x[:, :classes].argmax(1) + (x[:, -1] > 0).long()) % classes
    cut = [int(n * 0.6), int(n * 0.8)]
    return data.Splits(
        x[: cut[0]], y[: cut[0]], x[cut[0] : cut[1]], y[cut[0] : cut[1]], x[cut[1] :], y[cut[1] :], "classification", 10
    )


@pytest.mark.numerics
def test_cnn_k3_matches_three_separate_runs_1d(compose, tmp_path):
    """The CNN on length-40 sequences (MNIST-1D's shape, (L,) read as one channel: Conv1d): K=3 = 3 x K=1."""
    runs = [(0, "gelu"), (1, "gelu"), (2, "tanh")]
    splits = _signals()
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", runs, [F64, *CNN_SMALL]), splits=splits)
    one = [train.run(c, splits=splits) for c in _cfgs(compose, tmp_path, "one", runs, [F64, *CNN_SMALL])]
    for (s, a), v, o in zip(runs, vec, one):
        _assert_same_run(tmp_path / "vec" / f"{a}-{s}", tmp_path / "one" / f"{a}-{s}", v, o)
    net = models.build(compose(*CNN_SMALL).model, (40,), 10, "relu", {})
    assert isinstance(net.conv1, torch.nn.Conv1d) and net(torch.randn(5, 40)).shape == (5, 10)


def test_cli_seeds_vectorised_by_default(tmp_path):
    p = run_cli("seeds=[0,1,2]", f"run_dir={tmp_path}/seed${{seed}}", "vectorize_max_k=2", *FAST, "trainer.threads=1")
    assert p.returncode == 0, p.stderr[-3000:]
    ks = []
    for s in (0, 1, 2):
        d = tmp_path / f"seed{s}"
        for name in (
            "config.yaml",
            "metrics.csv",
            "dead_units.csv",
            "grad_flow.csv",
            "summary.json",
            "train.log",
            ".hydra/overrides.yaml",
        ):
            assert (d / name).is_file(), (s, name)
        summary = json.loads((d / "summary.json").read_text())
        assert summary["seed"] == s and summary["epochs"] == 2
        ks.append(summary["vectorized"]["k"])
    assert ks == [2, 2, 1]  # vectorize_max_k=2: seeds [0, 1], then [2]
    p = run_cli(
        "seeds=[0,1]", f"run_dir={tmp_path}/h/seed${{seed}}", "trainer.precision=16-mixed", "vectorize=true", *FAST
    )
    assert p.returncode == 2 and "cannot vectorise" in p.stderr


def test_cli_activations_and_seeds_in_one_process(tmp_path, compose):
    """activations=[...] x seeds=[...]: every run in one vectorised process, each in its own run dir,
    each the run `activation=A seed=S` would have made (in float64, `trainer.precision=64-true` on the
    command line: to RTOL64)."""
    p = run_cli(
        "activations=[tanh,leaky_relu]",
        "seeds=[0,1]",
        f"run_dir={tmp_path}/${{activation.name}}/seed${{seed}}",
        f"hydra.run.dir={tmp_path}/job",
        *FAST,
        F64,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    for a in ("tanh", "leaky_relu"):
        for s in (0, 1):
            summary = json.loads((tmp_path / a / f"seed{s}" / "summary.json").read_text())
            assert (summary["activation"], summary["seed"], summary["vectorized"]["k"]) == (a, s, 4)
            assert yaml_load(tmp_path / a / f"seed{s}" / ".hydra" / "overrides.yaml")[:2] == [
                f"activation={a}",
                f"seed={s}",
            ]
    assert (tmp_path / "job" / ".hydra" / "hydra.yaml").is_file()
    one = train.run(compose("activation=leaky_relu", "seed=1", f"run_dir={tmp_path}/one", *FAST, F64))
    vec = json.loads((tmp_path / "leaky_relu" / "seed1" / "summary.json").read_text())
    _assert_float64(tmp_path / "leaky_relu" / "seed1")
    _assert_same_run(tmp_path / "leaky_relu" / "seed1", tmp_path / "one", vec, one)
    p = run_cli(
        "activations=[tanh,leaky_relu]",
        "activation=leaky_relu",
        "activation.negative_slope=0.2",
        f"run_dir={tmp_path}/x",
        *FAST,
    )
    assert p.returncode == 2 and "cannot be overridden" in p.stderr


def yaml_load(path):
    import yaml

    return yaml.safe_load(path.read_text())


def test_metrics_csv_is_rewritten_at_most_every_flush_interval(compose, tmp_path, monkeypatch):
    """A run's metrics.csv during training: its first epoch at once, then at most every
    METRICS_FLUSH_SECONDS (not fsynced), and once more, fsynced, with every row when the run ends.
    Every epoch used to cost 2 fsyncs per model (~6 ms; ~10% of a MNIST-1D epoch)."""
    from actlab import atomic, recorder

    writes = []
    real = atomic.write_csv
    monkeypatch.setattr(
        atomic,
        "write_csv",
        lambda path, df, durable=True: (writes.append((Path(path).name, len(df), durable)), real(path, df, durable)),
    )
    monkeypatch.setattr(recorder, "METRICS_FLUSH_SECONDS", 3600.0)
    fit.fit_many(_cfgs(compose, tmp_path, "m", [(0, "relu"), (1, "gelu")], ["trainer.max_epochs=4"]))
    metrics = [w for w in writes if w[0] == "metrics.csv"]
    assert metrics == [("metrics.csv", 1, False)] * 2 + [("metrics.csv", 4, True)] * 2
    for a, s in (("relu", 0), ("gelu", 1)):
        assert pd.read_csv(tmp_path / "m" / f"{a}-{s}" / "metrics.csv")["epoch"].tolist() == [1, 2, 3, 4]
