"""Training throughput: plain PyTorch loop vs one Lightning run vs the vectorised trainer.

    python benchmarks/bench_train.py                 # full: 54,000 x 784, K = 1 5 10 16 25, batch 32 and 128
    python benchmarks/bench_train.py --quick         # 10,000 samples, K = 1 5, one epoch timed
    python benchmarks/bench_train.py --threads 1 --repeats 3 --samples 20000

Everything is measured in this one process, on MNIST-shaped random data (N x 784 standardised
floats, 10 classes) and the study's 784-128-10 MLP (ReLU, He init, Adam 1e-3):
  plain       a hand-written PyTorch loop (index gather, forward, backward, Adam), one model;
              "plain fusedAdam": the same with torch's fused Adam kernel; "DataLoader loop": the
              textbook loop (DataLoader over a TensorDataset), slower, shown for context
  lightning   actlab's LitModel + TensorData in a pl.Trainer configured as actlab.train configures it
  vec K=k     actlab.vectorized: k models (seeds 0..k-1) in one Lightning run
Per-model epoch time = (training-epoch wall time) / k, validation and probes off, median over the
timed epochs of all repeats (the first epoch of each arm is a warm-up and is not timed); "vs
plain" = plain's per-model time / this arm's (throughput ratio). The FLOP limit is the epoch's
matmul FLOPs (forward 2*in*out per sample and layer, weight gradient the same, input gradient the
same except for the first layer, which needs none: 409,088 FLOP per sample, i.e. 4.02 * params)
at the fp32 rate measured here with a large GEMM; "of peak" = limit / measured (1.0 = the whole
epoch at the large-GEMM rate, nothing else costing anything).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from actlab import models, timing, vectorized
from actlab.data import Splits
from actlab.module import LitModel, TensorData
from actlab.train import setup_runtime

ROOT = Path(__file__).resolve().parents[1]

IN, WIDTH, OUT = 784, 128, 10
MODEL_CFG = OmegaConf.create({"name": "mlp", "depth": 1, "width": WIDTH, "fc_width": None, "init": None})
OPTIM_CFG = OmegaConf.create({"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "momentum": None, "schedule": "none"})


DEVICE = torch.device("cpu")  # set by main (--device)


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Median fp32 GEMM rate (GFLOP/s) of an n x n x n matmul on DEVICE (8192 on a GPU)."""
    n = 8192 if DEVICE.type == "cuda" else n
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    a @ b
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def make_splits(n: int, seed: int = 0) -> Splits:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, OUT, (n,), generator=g)
    xv, yv = x[:256].clone(), y[:256].clone()
    return Splits(x, y, xv, yv, xv, yv, "classification", OUT).to(DEVICE)


def build(seed: int):
    pl.seed_everything(seed, verbose=False)
    return models.build(MODEL_CFG, (1, 28, 28), OUT, "relu", {}).to(DEVICE)


def n_params() -> int:
    return sum(p.numel() for p in build(0).parameters())


def matmul_flops_per_sample() -> int:
    """Forward + weight-gradient + input-gradient matmul FLOPs of one sample (no input gradient for
    the first layer: the data need none)."""
    layers = [m for m in build(0).modules() if isinstance(m, torch.nn.Linear)]
    return sum(2 * m.in_features * m.out_features * (2 if i == 0 else 3) for i, m in enumerate(layers))


def plain_epochs(splits: Splits, batch: int, epochs: int, fused: bool = False, dataloader: bool = False) -> list[float]:
    """A plain PyTorch loop: per-epoch seconds. Adam as LitModel makes it (torch's default
    implementation on CPU), or fused (one kernel for all parameters). dataloader=True: the textbook
    loop, batches from DataLoader(TensorDataset, shuffle=True); context only, the ratios are taken
    against the index-gather loop, the faster one."""
    from torch.utils.data import DataLoader, TensorDataset

    model = build(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
    x, y = splits.x_train, splits.y_train
    gen = torch.Generator().manual_seed(0)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, generator=gen) if dataloader else None

    def batches():
        if loader is not None:
            yield from loader
            return
        order = torch.randperm(len(x), generator=gen).to(DEVICE)
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            yield x[idx], y[idx]

    out = []
    for _ in range(epochs):
        sync()
        t = time.perf_counter()
        for xb, yb in batches():
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync()
        out.append(time.perf_counter() - t)
    return out


class EpochTimer(pl.Callback):
    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, trainer, pl_module):
        sync()
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        sync()
        self.times.append(time.perf_counter() - self._t)
        if hasattr(pl_module, "finish_train_epoch"):
            pl_module.finish_train_epoch()


def _trainer(epochs: int, timer: EpochTimer) -> pl.Trainer:
    return pl.Trainer(
        accelerator=DEVICE.type,
        devices=1,
        max_epochs=epochs,
        deterministic=True,
        precision="32-true",
        logger=False,
        callbacks=[timer],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


def lightning_epochs(splits: Splits, batch: int, epochs: int) -> list[float]:
    """actlab's single-model LitModel, as actlab.train runs it (probes and validation off)."""
    timer = EpochTimer()
    lit = LitModel(build(0), "classification", OPTIM_CFG, epochs)
    _trainer(epochs, timer).fit(lit, datamodule=TensorData(splits, batch, 0))
    return timer.times


def vectorized_epochs(splits: Splits, batch: int, epochs: int, k: int, steps_per_call: int) -> list[float]:
    """k models in one vectorised Lightning run: per-epoch seconds for all k together."""
    timer = EpochTimer()
    nets = [build(s) for s in range(k)]
    net = vectorized.StackedMLP(nets, [(0, k)])
    lit = vectorized.VecLitModel(net, "classification", OPTIM_CFG, epochs)
    dm = vectorized.VecData(splits, batch, list(range(k)), steps_per_call)
    _trainer(epochs, timer).fit(lit, datamodule=dm)
    return timer.times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=54_000)
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10, 16, 25])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per arm (after one warm-up epoch)")
    ap.add_argument("--steps-per-call", type=int, default=32, help="trainer.steps_per_call of the vectorised run")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=1, help="rounds over all arms (interleaved); medians over all")
    ap.add_argument("--quick", action="store_true", help="10,000 samples, K = 1 5, one timed epoch")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.ks, args.epochs = 10_000, [1, 5], 1
    global DEVICE
    DEVICE = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    # The process-wide settings actlab.train makes for a run (threads, deterministic-mode details,
    # CUDA numerics: TF32 off), from the real trainer config.
    tr = OmegaConf.load(ROOT / "conf" / "trainer" / "default.yaml")
    tr.progress, tr.threads = "quiet", args.threads
    setup_runtime(tr)
    warnings.filterwarnings("ignore")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    where = f"{timing.machine(DEVICE)['device_name']}, {os.cpu_count()} CPUs"
    print(
        f"# {where}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d %H:%M')}, load average {load:.1f}"
        f"{'  (machine busy: expect noise; --threads 1 suffers least)' if load > (os.cpu_count() or 1) else ''}"
    )
    splits = make_splits(args.samples)
    p = n_params()
    peak = matmul_gflops()
    flops = matmul_flops_per_sample() * args.samples
    print(
        f"# fp32 matmul {peak:.0f} GFLOP/s (large GEMM, median); MLP 784-128-10 = {p} params; "
        f"matmul FLOPs {flops / 1e9:.1f} GFLOP/epoch -> limit {flops / peak / 1e9:.3f} s/epoch"
    )
    limit = flops / peak / 1e9
    print(
        f"{'arm':<16}{'batch':>6}{'s/epoch/model':>15}{'vs plain':>10}{'of peak':>9}   timed epochs (s, all k models)"
    )
    for batch in args.batches:
        arms = [
            ("plain", 1, lambda n, b=batch: plain_epochs(splits, b, n)),
            ("plain fusedAdam", 1, lambda n, b=batch: plain_epochs(splits, b, n, fused=True)),
            ("DataLoader loop", 1, lambda n, b=batch: plain_epochs(splits, b, n, dataloader=True)),
            ("lightning", 1, lambda n, b=batch: lightning_epochs(splits, b, n)),
        ]
        arms += [
            (f"vec K={k}", k, (lambda n, k=k, b=batch: vectorized_epochs(splits, b, n, k, args.steps_per_call)))
            for k in args.ks
        ]
        times: dict[str, list[float]] = {name: [] for name, _, _ in arms}
        for _ in range(args.repeats):  # arms interleaved: drift in machine load hits them alike
            for name, _k, fn in arms:
                with contextlib.redirect_stdout(io.StringIO()):
                    times[name] += fn(args.epochs + 1)[1:]  # the first epoch is a warm-up
        plain = statistics.median(times["plain"])
        for name, k, _ in arms:
            per_model = statistics.median(times[name]) / k
            print(
                f"{name:<16}{batch:>6}{per_model:>15.3f}{plain / per_model:>9.2f}x{limit / per_model:>9.3f}   "
                + " ".join(f"{t:.2f}" for t in times[name]),
                flush=True,
            )


if __name__ == "__main__":
    main()
