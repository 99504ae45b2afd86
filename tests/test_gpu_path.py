"""The vectorised trainer's GPU path, checked on what this machine has.

On any machine: the training step makes no host sync (a torch-function mode refuses every
tensor -> Python conversion inside it), bf16-mixed and torch.compile are config switches that train
the same models. With CUDA (skipped otherwise): the step runs under CUDA's sync debug mode set to
"error", a CUDA fp32 run agrees with the CPU run, and bf16 + TF32 + compile trains.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from test_vectorized import ATOL64, F64, METRICS, RTOL64
from test_vectorized import _cfgs as _runs_cfgs
from torch.overrides import TorchFunctionMode

from actlab import engine, fit

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# Every way a tensor value reaches Python (each one waits for the device to finish).
HOST_SYNCS = {"item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__", "nonzero"}


class NoHostSync(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        name = getattr(func, "__name__", str(func))
        if name in HOST_SYNCS or (name == "to" and any(str(a) == "cpu" for a in args[1:])):
            raise AssertionError(f"host sync inside the training step: Tensor.{name}")
        return func(*args, **(kwargs or {}))


def _cfgs(compose, tmp, sub, seeds=(0, 1, 2), extra=()):
    """ReLU runs of `seeds` (test_vectorized's fast settings) in tmp/sub/relu-<seed>."""
    return _runs_cfgs(compose, tmp, sub, [(s, "relu") for s in seeds], extra)


def _metrics(tmp, sub, seeds=(0, 1, 2)):
    return np.stack([pd.read_csv(tmp / sub / f"relu-{s}" / "metrics.csv")[METRICS].to_numpy() for s in seeds])


def _guard_training_step(monkeypatch, make_guard):
    """Run every VecLitModel.training_step inside the context `make_guard()`; returns a call log."""
    step = engine.VecLitModel.training_step
    log = []

    def guarded(self, batch, batch_idx):
        with make_guard() as g:
            out = step(self, batch, batch_idx)
        log.append(g)
        return out

    monkeypatch.setattr(engine.VecLitModel, "training_step", guarded)
    return log


@pytest.mark.parametrize("precision", ["32-true", "64-true"])
def test_training_step_has_no_host_sync(compose, tmp_path, monkeypatch, precision):
    """Probes on (the grad-flow statistics are recorded inside the step): still nothing reaches the
    host before the epoch ends."""
    log = _guard_training_step(monkeypatch, NoHostSync)
    summaries = fit.fit_many(_cfgs(compose, tmp_path, "vec", extra=[f"trainer.precision={precision}"]))
    assert log and all(g.calls > 50 for g in log)  # the mode did see the step's tensor operations
    assert all(math.isfinite(s["test_acc"]) for s in summaries)


def test_bf16_mixed_trains_the_same_models(compose, tmp_path):
    """bf16 autocast (the GPU setting; CPU autocast here): the same runs to bf16 accuracy."""
    fit.fit_many(_cfgs(compose, tmp_path, "fp32"))
    s = fit.fit_many(_cfgs(compose, tmp_path, "bf16", extra=["trainer.precision=bf16-mixed"]))
    a, b = _metrics(tmp_path, "fp32"), _metrics(tmp_path, "bf16")
    np.testing.assert_allclose(b[..., [0, 2]], a[..., [0, 2]], rtol=0.1)  # losses
    np.testing.assert_allclose(b[..., [1, 3]], a[..., [1, 3]], atol=0.05)  # accuracies
    assert all(x["test_acc"] > 0.8 for x in s)


@pytest.mark.slow
def test_compile_matches_eager(compose, tmp_path):
    """trainer.compile=true compiles the batched forward+loss (and its backward); same runs. In float64:
    the generated kernels fuse and order the sums their own way, which in float32 can move a ReLU
    pre-activation across the kink (test_vectorized.RTOL32); in float64 they agree to RTOL64."""
    fit.fit_many(_cfgs(compose, tmp_path, "eager", seeds=(0, 1), extra=[F64]))
    fit.fit_many(_cfgs(compose, tmp_path, "compiled", seeds=(0, 1), extra=["trainer.compile=true", F64]))
    np.testing.assert_allclose(
        _metrics(tmp_path, "compiled", (0, 1)), _metrics(tmp_path, "eager", (0, 1)), rtol=RTOL64, atol=ATOL64
    )


@cuda
def test_cuda_step_has_no_host_sync_and_matches_cpu(compose, tmp_path, monkeypatch):
    class SyncError:
        def __enter__(self):
            torch.cuda.set_sync_debug_mode("error")  # any synchronising CUDA call raises
            return self

        def __exit__(self, *exc):
            torch.cuda.set_sync_debug_mode("default")

    # float64 on both: cuBLAS and the CPU sum in different orders, which float32 ReLU runs do not survive
    # to a fixed tolerance (test_vectorized.RTOL32); float64 agrees to RTOL64
    fit.fit_many(_cfgs(compose, tmp_path, "cpu", extra=["device=cpu", F64]))
    log = _guard_training_step(monkeypatch, SyncError)
    summaries = fit.fit_many(_cfgs(compose, tmp_path, "cuda", extra=["device=cuda", F64]))
    assert log and all(s["device"].startswith("cuda") for s in summaries)
    np.testing.assert_allclose(_metrics(tmp_path, "cuda"), _metrics(tmp_path, "cpu"), rtol=RTOL64, atol=ATOL64)


@cuda
def test_cuda_bf16_tf32_compile_trains(compose, tmp_path):
    extra = ["device=cuda", "trainer.precision=bf16-mixed", "trainer.tf32=true", "trainer.compile=true"]
    summaries = fit.fit_many(_cfgs(compose, tmp_path, "fast", extra=extra))
    assert all(s["test_acc"] > 0.8 for s in summaries)
    assert torch.backends.cuda.matmul.allow_tf32
