"""Training throughput: plain PyTorch loop vs the engine (a single run is K=1), MLP and CNN, in-process
and through the command line.

    python benchmarks/bench_train.py                 # full: 54,000 x 784, K = 1 5 10 16 25, batch 32 and 128
    python benchmarks/bench_train.py --quick         # 10,000 samples, K = 1 5, one epoch timed
    python benchmarks/bench_train.py --threads 1 --repeats 3 --samples 20000

Everything is measured in this one process, on MNIST-shaped random data (N x 784 standardised
floats, 10 classes) and the study's 784-128-10 MLP (ReLU, He init, Adam 1e-3):
  plain       a hand-written PyTorch loop (index gather, forward, backward, Adam), one model;
              "plain fusedAdam": the same with torch's fused Adam kernel; "DataLoader loop": the
              textbook loop (DataLoader over a TensorDataset), slower, shown for context
  engine K=k  actlab.engine: k models (seeds 0..k-1) in one Lightning run; K=1 is what a single run
              trains (`python -m actlab.train seed=0`)
  -<fastpath> engine K=10 with one private fast path of actlab.fastpaths switched off (its public
              fallback): the fast path's gain per step, in the same process
  cnn ...     the CNN (conf/model/cnn.yaml) on 28x28 images and on 1-D length-40 signals: plain loop
              vs engine K=10 (actlab.stacked_cnn: im2col + batched matmuls), per model; "K=10 vmap":
              the same through vmap (grouped convolutions, the engine before stacked_cnn). Their
              "of peak" counts the convolutions' and linear layers' FLOPs the same way
              (`--only cnn`: these arms alone, e.g. --only cnn --cnn-samples 1000 --no-cli)
  cli K=k     `python -m actlab.train` as a user runs it (k=1: seed=0; k=10: seeds=[0..9]) on
              mnist_subset (3,000 training images) with the same MLP, black-box:
              (wall(4 epochs) - wall(1 epoch)) / 3 / k per model and epoch, validation included
              (--cli-epochs LO HI: other lengths; medians of --cli-repeats jobs of each length);
              "vs plain" against the plain loop on 3,000 random images, timed in this process
              between the jobs
Per-model epoch time = (training-epoch wall time) / k, validation and probes off, median over the
timed epochs of all repeats (the first epoch of each arm is a warm-up and is not timed); "vs
plain" = plain's per-model time / this arm's (throughput ratio). The FLOP limit is the epoch's
matmul FLOPs (forward 2*in*out per sample and layer, weight gradient the same, input gradient the
same except for the first layer, which needs none: 409,088 FLOP per sample, i.e. 4.02 * params)
at the fp32 rate measured here with a large GEMM; "of peak" = limit / measured (1.0 = the whole
epoch at the large-GEMM rate, nothing else costing anything). "ceiling": the limit plus fused Adam's
update alone, which batching cannot shrink (the same memory traffic per model): the most any
batched engine could gain over the plain loop on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from actlab import batches, engine, fastpaths, fit, machine, models
from actlab.data import Splits
from actlab.runtime import setup_runtime
from actlab.stacked_vmap import StackedNet

ROOT = Path(__file__).resolve().parents[1]

IN, WIDTH, OUT = 784, 128, 10
MODEL_CFG = OmegaConf.create({"name": "mlp", "depth": 1, "width": WIDTH, "fc_width": None, "init": None})
CNN_CFG = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "model" / "cnn.yaml")
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


def make_splits(n: int, seed: int = 0, shape=(1, 28, 28)) -> Splits:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    y = torch.randint(0, OUT, (n,), generator=g)
    xv, yv = x[:256].clone(), y[:256].clone()
    return Splits(x, y, xv, yv, xv, yv, "classification", OUT).to(DEVICE)


def build(seed: int, cfg=MODEL_CFG, in_shape=(1, 28, 28)):
    pl.seed_everything(seed, verbose=False)
    return models.build(cfg, in_shape, OUT, "relu", {}).to(DEVICE)


def n_params() -> int:
    return sum(p.numel() for p in build(0).parameters())


def cnn_flops_per_sample(in_shape) -> int:
    """The CNN's forward + weight-gradient + input-gradient multiply-add FLOPs of one sample (convolutions
    and linear layers; no input gradient for the first layer), what a conv library cannot do without."""
    net = build(0, CNN_CFG, in_shape)
    x = torch.zeros(1, *in_shape, device=DEVICE)
    total, first = 0, True
    for m in net.children():
        y = m(x)
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
            fwd = 2 * m.weight.numel() * (y.numel() // y.shape[1] if not isinstance(m, torch.nn.Linear) else 1)
            total += fwd * (2 if first else 3)
            first = False
        x = y
    return total


def matmul_flops_per_sample() -> int:
    """Forward + weight-gradient + input-gradient matmul FLOPs of one sample (no input gradient for
    the first layer: the data need none)."""
    layers = [m for m in build(0).modules() if isinstance(m, torch.nn.Linear)]
    return sum(2 * m.in_features * m.out_features * (2 if i == 0 else 3) for i, m in enumerate(layers))


def adam_seconds_per_model_step(k: int = 10, steps: int = 200) -> float:
    """Seconds per model and step of the optimizer update alone: fused Adam (the engine's) over the
    parameters of k stacked MLPs, gradients given. Memory-bound (it reads parameter, gradient and both
    moments and writes three of them every step), and the same work per model for the plain loop and
    the engine: with the matmuls at the large-GEMM rate it bounds how far batching can go."""
    params = [torch.zeros(k, *p.shape, device=DEVICE, requires_grad=True) for p in build(0).parameters()]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    for _ in range(5):
        opt.step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        opt.step()
    sync()
    return (time.perf_counter() - t) / steps / k


def plain_epochs(
    splits: Splits, batch: int, epochs: int, fused: bool = False, dataloader: bool = False, cfg=MODEL_CFG
) -> list[float]:
    """A plain PyTorch loop: per-epoch seconds. Adam as LitModel makes it (torch's default
    implementation on CPU), or fused (one kernel for all parameters). dataloader=True: the textbook
    loop, batches from DataLoader(TensorDataset, shuffle=True); context only, the ratios are taken
    against the index-gather loop, the faster one."""
    from torch.utils.data import DataLoader, TensorDataset

    model = build(0, cfg, splits.in_shape)
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


def engine_epochs(
    splits: Splits,
    batch: int,
    epochs: int,
    k: int,
    steps_per_call: int,
    cfg=MODEL_CFG,
    off: str | None = None,
    vmap: bool = False,
) -> list[float]:
    """k models in one engine run: per-epoch seconds for all k together. ``off``: a fast path of
    actlab.fastpaths switched off for this run. ``vmap``: the CNN through vmap (grouped convolutions,
    the engine before actlab.stacked_cnn) instead of its explicit stack."""
    timer = EpochTimer()
    nets = [build(s, cfg, splits.in_shape) for s in range(k)]
    net = StackedNet(nets, [(0, k)], explicit=False) if vmap else fit.stack(cfg.name, nets, [(0, k)])
    lit = engine.VecLitModel(net, "classification", OPTIM_CFG, epochs)
    dm = batches.VecData(splits, batch, list(range(k)), steps_per_call)
    saved = dict(fastpaths.USE)
    if off:
        fastpaths.USE[off] = False
    try:
        _trainer(epochs, timer).fit(lit, datamodule=dm)
    finally:
        fastpaths.USE.update(saved)
    return timer.times


def cli_seconds(k: int, batch: int, epochs: int, threads: int | None) -> float:
    """Wall seconds of `python -m actlab.train` training k seeds of the MLP on mnist_subset for `epochs`."""
    with tempfile.TemporaryDirectory() as tmp:
        seeds = ["seed=0"] if k == 1 else [f"seeds=[{','.join(map(str, range(k)))}]"]
        cmd = [
            sys.executable, "-m", "actlab.train", *seeds, "data=mnist_subset", "model.depth=1",
            f"model.width={WIDTH}", f"data.batch_size={batch}", f"trainer.max_epochs={epochs}",
            "probes.dead_units.enabled=false", "probes.grad_flow.enabled=false", "trainer.progress=quiet",
            "trainer.checkpoint_every_n_epochs=0", f"run_dir={tmp}/seed${{seed}}",
            *([f"trainer.threads={threads}"] if threads else []),
        ]  # fmt: skip
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - t


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
    ap.add_argument("--cnn-samples", type=int, default=5_000, help="samples of the CNN arms")
    ap.add_argument("--no-cli", dest="cli", action="store_false", help="skip the command-line arms")
    ap.add_argument(
        "--cli-repeats", type=int, default=3, help="jobs of each length per command-line arm (interleaved; medians)"
    )
    ap.add_argument(
        "--cli-epochs",
        type=int,
        nargs=2,
        default=[1, 4],
        metavar=("LO", "HI"),
        help="the command-line arms time jobs of LO and HI epochs (default 1 4); a larger HI (e.g. 21) lifts"
        " the training time above the noise of each job's start-up (~10 s of imports)",
    )
    ap.add_argument(
        "--only", choices=("all", "mlp", "cnn"), default="all", help="the MLP arms (and cli) only, or the CNN arms only"
    )
    args = ap.parse_args()
    if args.quick:
        args.samples, args.ks, args.epochs, args.cnn_samples = 10_000, [1, 5], 1, 1_000
    global DEVICE
    DEVICE = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    # The process-wide settings actlab.train makes for a run (threads, deterministic-mode details,
    # CUDA numerics: TF32 off), from the real trainer config.
    tr = OmegaConf.load(ROOT / "conf" / "trainer" / "default.yaml")
    tr.progress, tr.threads = "quiet", args.threads
    setup_runtime(tr)
    warnings.filterwarnings("ignore")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    where = f"{machine.machine(DEVICE)['device_name']}, {os.cpu_count()} CPUs"
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
    cnn_shapes = {"cnn 28x28": (1, 28, 28), "cnn 1-D 40": (40,)}
    cnn_splits = {name: make_splits(args.cnn_samples, shape=shape) for name, shape in cnn_shapes.items()}
    cnn_limit = {
        name: cnn_flops_per_sample(shape) * args.cnn_samples / peak / 1e9 for name, shape in cnn_shapes.items()
    }
    if args.only in ("all", "cnn"):
        print(
            "# cnn (conf/model/cnn.yaml) "
            + "; ".join(
                f"{name}: conv+linear FLOPs {cnn_flops_per_sample(shape) / 1e6:.1f} M/sample -> limit {cnn_limit[name]:.3f} s/epoch"
                for name, shape in cnn_shapes.items()
            )
        )
    print(
        f"{'arm':<21}{'batch':>6}{'s/epoch/model':>15}{'vs plain':>10}{'of peak':>9}   timed epochs (s, all k models)"
    )
    for batch in args.batches:
        arms = []  # (name, k, the reference arm its ratio is against, the FLOP limit, fn)
        if args.only in ("all", "mlp"):
            arms += [
                ("plain", 1, "plain", limit, lambda n, b=batch: plain_epochs(splits, b, n)),
                ("plain fusedAdam", 1, "plain", limit, lambda n, b=batch: plain_epochs(splits, b, n, fused=True)),
                ("DataLoader loop", 1, "plain", limit, lambda n, b=batch: plain_epochs(splits, b, n, dataloader=True)),
            ]
            # the fast paths off first: glibc's malloc settings, once made, stay for the process
            arms += [
                (
                    f"K=10 -{key}",
                    10,
                    "plain",
                    limit,
                    (lambda n, key=key, b=batch: engine_epochs(splits, b, n, 10, args.steps_per_call, off=key)),
                )
                for key in ("mallopt", "act_backward", "fused_adam")
            ]
            arms += [
                (
                    f"engine K={k}",
                    k,
                    "plain",
                    limit,
                    (lambda n, k=k, b=batch: engine_epochs(splits, b, n, k, args.steps_per_call)),
                )
                for k in args.ks
            ]
        for name in cnn_shapes if args.only in ("all", "cnn") else ():
            cs, ref, lim = cnn_splits[name], f"{name} plain", cnn_limit[name]
            arms += [
                (ref, 1, ref, lim, (lambda n, b=batch, cs=cs: plain_epochs(cs, b, n, cfg=CNN_CFG))),
                (
                    f"{name} K=10",
                    10,
                    ref,
                    lim,
                    (lambda n, b=batch, cs=cs: engine_epochs(cs, b, n, 10, args.steps_per_call, cfg=CNN_CFG)),
                ),
                (
                    f"{name} K=10 vmap",
                    10,
                    ref,
                    lim,
                    (
                        lambda n, b=batch, cs=cs: engine_epochs(
                            cs, b, n, 10, args.steps_per_call, cfg=CNN_CFG, vmap=True
                        )
                    ),
                ),
            ]
        times: dict[str, list[float]] = {name: [] for name, *_ in arms}
        for _ in range(args.repeats):  # arms interleaved: drift in machine load hits them alike
            for name, _k, _ref, _lim, fn in arms:
                with contextlib.redirect_stdout(io.StringIO()):
                    times[name] += fn(args.epochs + 1)[1:]  # the first epoch is a warm-up
        for name, k, ref, lim, _ in arms:
            per_model = statistics.median(times[name]) / k
            ref_time = statistics.median(times[ref])
            print(
                f"{name:<21}{batch:>6}{per_model:>15.3f}{ref_time / per_model:>9.2f}x{lim / per_model:>9.3f}   "
                + " ".join(f"{t:.2f}" for t in times[name]),
                flush=True,
            )
        if args.only in ("all", "mlp"):
            # The most any batching of these models can gain on this machine: every matmul at the
            # large-GEMM rate, plus the optimizer update, which batching cannot shrink (per model it is
            # the same memory traffic), and nothing else.
            adam = adam_seconds_per_model_step() * math.ceil(args.samples / batch)
            plain_time = statistics.median(times["plain"])
            print(
                f"{'ceiling':<21}{batch:>6}{limit + adam:>15.3f}{plain_time / (limit + adam):>9.2f}x{limit / (limit + adam):>9.3f}"
                f"   matmuls at the large-GEMM rate ({limit:.3f} s) + fused Adam's update alone ({adam:.3f} s)",
                flush=True,
            )
        if args.cli and args.only in ("all", "mlp"):
            # the reference: the plain loop on as many images as the command line trains on (3,000, which
            # stay in cache, unlike --samples of them), timed in this process around the jobs
            small = make_splits(3000)
            plain_small = []
            lo, hi = args.cli_epochs
            for k in (1, 10):
                walls = {lo: [], hi: []}
                for _ in range(args.cli_repeats):  # interleaved: start-up noise (~10 s of imports) hits both
                    for e in (lo, hi):
                        walls[e].append(cli_seconds(k, batch, e, args.threads))
                    plain_small += plain_epochs(small, batch, 6)[1:]
                w_lo, w_hi = statistics.median(walls[lo]), statistics.median(walls[hi])
                per_model = (w_hi - w_lo) / (hi - lo) / k
                ref = statistics.median(plain_small)
                print(
                    f"{f'cli K={k}':<21}{batch:>6}{per_model:>15.3f}{ref / per_model:>9.2f}x{'':>9}   "
                    f"plain on 3,000 images {ref:.3f} s/epoch; "
                    f"median wall {lo} epoch(s) {w_lo:.1f} s, {hi} epochs {w_hi:.1f} s of {args.cli_repeats} "
                    f"(mnist_subset, 3,000 images); all: " + ", ".join(f"{w:.1f}" for w in walls[lo] + walls[hi]),
                    flush=True,
                )


if __name__ == "__main__":
    main()
