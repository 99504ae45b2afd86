"""Vectorised parts whose models differ in data split and learning rate (the default study: a split per
seed, `data.split_seed=${seed}`, and a learning rate per activation, `lr_table=`).

A part of K models with their own splits and learning rates = the K runs alone, in float64 to RTOL64
(test_vectorized.py derives it), for the MLP and the CNN; and the runner plans a job's runs into
ceil(n / vectorize_max_k) balanced parts whatever their splits and learning rates.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from test_vectorized import F64, FAST, RTOL64, _assert_float64, _assert_same_run

from actlab import data, fit, runner, train
from actlab import losses as loss_fns
from actlab.config import job_configs
from actlab.errors import ConfigError
from actlab.recorder import VecRecorder

# (seed = split seed, activation, learning rate): relu twice, so one activation group holds two lrs
RUNS = [(0, "relu", 0.01), (1, "tanh", 0.003), (2, "relu", 0.001)]
MNIST1D = ("data=mnist1d", "data.resample_test=true", "model.width=16", "model.depth=2")
CNN_SMALL = ("model=cnn", "model.width=4", "model.fc_width=16", "data.batch_size=128")


def _cfgs(compose, tmp, sub, extra=()):
    return [
        compose(
            f"seed={s}",
            f"activation={a}",
            f"optimizer.lr={lr}",
            f"data.split_seed={s}",
            f"run_dir={tmp}/{sub}/{a}-{s}",
            *MNIST1D,
            *FAST,
            F64,
            *extra,
        )
        for s, a, lr in RUNS
    ]


def _final_weights(monkeypatch) -> dict:
    """{run_dir: model k's final parameters}, recorded when training ends (the per-model view)."""
    weights = {}
    original = VecRecorder.on_train_end

    def hook(self, trainer, pl_module):
        original(self, trainer, pl_module)
        for k, c in enumerate(self.cfgs):
            view = self._view(k, pl_module).model
            weights[str(c.run_dir)] = {n: p.detach().clone() for n, p in view.named_parameters()}
            weights[str(c.run_dir)]["chance"] = self.chance[k]  # the divergence rule's chance loss

    monkeypatch.setattr(VecRecorder, "on_train_end", hook)
    return weights


def _check_part_equals_separate_runs(compose, monkeypatch, tmp_path, extra=()):
    weights = _final_weights(monkeypatch)
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", extra))  # the splits loaded per data config: S = 3
    one = [train.run(c) for c in _cfgs(compose, tmp_path, "one", extra)]
    for (s, a, lr), v, o in zip(RUNS, vec, one):
        vd, od = tmp_path / "vec" / f"{a}-{s}", tmp_path / "one" / f"{a}-{s}"
        assert v["vectorized"]["k"] == 3 and v["lr"] == lr
        _assert_float64(vd)
        _assert_same_run(vd, od, v, o)  # metrics, test, summaries and both probe tables (dead units: own val)
        assert v["data_provenance"] == o["data_provenance"] and v["data_provenance"]["split_seed"] == s
        own = data.load(_cfgs(compose, tmp_path, "x", extra)[RUNS.index((s, a, lr))].data)
        chance = loss_fns.chance_loss(own.task, own.y_train, own.num_outputs)
        assert weights[str(vd)].pop("chance") == weights[str(od)].pop("chance") == chance  # its own split's
        for name, w in weights[str(od)].items():
            torch.testing.assert_close(weights[str(vd)][name], w, rtol=RTOL64, atol=1e-13, msg=name)
    assert len({v["test_loss"] for v in vec}) == 3
    assert len({str(v["data_provenance"]) for v in vec}) == 3  # three different splits


@pytest.mark.numerics
def test_mlp_part_with_own_splits_and_lrs_equals_separate_runs(compose, monkeypatch, tmp_path):
    _check_part_equals_separate_runs(compose, monkeypatch, tmp_path)


@pytest.mark.numerics
def test_cnn_part_with_own_splits_and_lrs_equals_separate_runs(compose, monkeypatch, tmp_path):
    """The CNN on MNIST-1D (Conv1d through vmap), Adam with L2 weight decay: per-model lr scales it too."""
    _check_part_equals_separate_runs(compose, monkeypatch, tmp_path, [*CNN_SMALL, "optimizer.weight_decay=1e-3"])


def test_sgd_momentum_cosine_own_lrs_equals_separate_runs(compose, tmp_path):
    """SGD + momentum + cosine schedule + weight decay, one split, three learning rates."""
    extra = ("optimizer=sgd", "optimizer.schedule=cosine", "optimizer.weight_decay=1e-3", "data.split_seed=0")
    vec = fit.fit_many(_cfgs(compose, tmp_path, "vec", extra))
    one = [train.run(c) for c in _cfgs(compose, tmp_path, "one", extra)]
    for (s, a, _), v, o in zip(RUNS, vec, one):
        _assert_same_run(tmp_path / "vec" / f"{a}-{s}", tmp_path / "one" / f"{a}-{s}", v, o)


def _lr_table(tmp_path, acts) -> str:
    lrs = [0.001, 0.003, 0.01]
    rows = [{"activation": a, "lr": lrs[i % 3], "chosen": True} for i, a in enumerate(acts)]
    pd.DataFrame(rows).to_csv(tmp_path / "lr.csv", index=False)
    return str(tmp_path / "lr.csv")


ACTS = ["relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "mish", "softplus", "tanh", "sigmoid"]


def test_default_study_job_trains_in_balanced_parts(compose, tmp_path):
    """110 runs (11 activations x 10 seeds), a split per seed and an lr per activation: 4 parts of
    28, 28, 27, 27 (vectorize_max_k=32), in the job's order, the same when planned again."""
    cfg = compose(
        f"activations=[{','.join(ACTS)}]",
        f"seeds=[{','.join(map(str, range(10)))}]",
        "data=mnist1d",
        "data.resample_test=true",
        "data.split_seed=${seed}",
        f"lr_table={_lr_table(tmp_path, ACTS)}",
        f"run_dir={tmp_path}/${{activation.name}}/seed${{seed}}",
    )
    cfgs = job_configs(cfg)
    assert len({c.optimizer.lr for c in cfgs}) == 3 and len({c.data.split_seed for c in cfgs}) == 10
    parts = runner.vectorized_parts(cfg, cfgs)
    assert [len(p) for p in parts] == [28, 28, 27, 27]
    assert [c for p in parts for c in p] == cfgs  # in order
    again = runner.vectorized_parts(cfg, job_configs(cfg))
    assert [[str(c.run_dir) for c in p] for p in again] == [[str(c.run_dir) for c in p] for p in parts]
    for n, max_k, sizes in [(6, 32, [6]), (4, 3, [2, 2]), (3, 2, [2, 1]), (10, 4, [4, 3, 3]), (8, 8, [8])]:
        small = compose(
            f"seeds=[{','.join(map(str, range(n)))}]", f"vectorize_max_k={max_k}", "data.split_seed=${seed}"
        )
        assert [len(p) for p in runner.vectorized_parts(small, job_configs(small))] == sizes, (n, max_k)


def test_parts_still_separate_other_settings(compose, tmp_path):
    """Runs differing in anything but seed, activation, run dir, split seed and lr are never in one part;
    neither are runs whose splits differ in size."""
    base = ("seeds=[0,1]", "data.split_seed=${seed}", f"run_dir={tmp_path}/${{activation.name}}/s${{seed}}")
    cfg = compose(*base)
    cfgs = job_configs(cfg)
    other = job_configs(compose(*base, "data.batch_size=32"))
    mom = job_configs(compose(*base, "optimizer=sgd"))
    parts = runner.vectorized_parts(cfg, [*cfgs, *other, *mom])
    assert [[c.seed for c in p] for p in parts] == [[0, 1]] * 3
    assert [p[0].data.batch_size for p in parts] == [cfgs[0].data.batch_size, 32, cfgs[0].data.batch_size]
    shapes = {runner.data_key(c): [[100 + c.seed]] for c in cfgs}  # as if seed 1's split were larger
    assert [len(p) for p in runner.vectorized_parts(cfg, cfgs, shapes)] == [1, 1]
    # fit_many refuses splits of different sizes in one line
    a, b = data.load(cfgs[0].data), data.load(cfgs[1].data)
    b = data.Splits(b.x_train[:-1], b.y_train[:-1], b.x_val, b.y_val, b.x_test, b.y_test, b.task, b.num_outputs)
    with pytest.raises(ConfigError, match="differ in size"):
        fit.fit_many(cfgs, splits=[a, b])
