"""Wall time of the paper sweep's MNIST training: every activation x 5 seeds x 20 epochs, one device.

    python benchmarks/bench_sweep.py                        # the issue's target workload (GPU: < 60 s)
    python benchmarks/bench_sweep.py --group-by activation  # 11 jobs of 5 models, as conf/sweep/paper.yaml
    python benchmarks/bench_sweep.py --precision bf16-mixed --tf32 --compile
    python benchmarks/bench_sweep.py --quick                # smoke test: 2,000 samples, 1 epoch, 2 acts

The runs are the pipeline's own: configs composed from conf/ by Hydra (data=mnist, the paper's
8 x 128 MLP, batch 128, Adam, probes as configured) and trained by `actlab.fit.fit_many`
exactly as `python -m actlab.train activations=[...] seeds=[...]` does, chunked by
`vectorize_max_k`. Only the data are stand-ins: MNIST-shaped standardised random floats (55,000
train / 5,000 val / 10,000 test x 1 x 28 x 28, 10 classes), because nothing can be downloaded
where this runs; time per step does not depend on the pixel values. Run dirs go to a temporary
directory. Reported: wall time of the whole training (data already on the device; process start,
imports and the data copy excluded), and each vectorised job's training seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import tempfile
import time
import warnings

import torch

from actlab import fit, machine, train
from actlab.activations import NAMES
from actlab.data import Splits


def mnist_like(n_train: int, seed: int = 0) -> Splits:
    g = torch.Generator().manual_seed(seed)
    x = lambda n: torch.randn(n, 1, 28, 28, generator=g)  # noqa: E731
    y = lambda n: torch.randint(0, 10, (n,), generator=g)  # noqa: E731
    return Splits(x(n_train), y(n_train), x(5000), y(5000), x(10_000), y(10_000), "classification", 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activations", nargs="+", default=list(NAMES))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument(
        "--samples", type=int, default=55_000, help="training samples (MNIST: 55,000 after the 5k val split)"
    )
    ap.add_argument(
        "--group-by",
        choices=["experiment", "activation"],
        default="experiment",
        help="experiment: one job of all models (chunked by vectorize_max_k); activation: a job each",
    )
    ap.add_argument("--max-k", type=int, default=None, help="vectorize_max_k (default: conf/config.yaml's)")
    ap.add_argument("--precision", default="32-true", help="trainer.precision: 32-true or bf16-mixed")
    ap.add_argument("--tf32", action="store_true", help="trainer.tf32=true (CUDA)")
    ap.add_argument("--compile", action="store_true", help="trainer.compile=true")
    ap.add_argument("--no-probes", action="store_true", help="dead-unit and gradient-flow probes off")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="2,000 samples, 1 epoch, relu and gelu, 2 seeds")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.epochs, args.activations, args.seeds = 2000, 1, ["relu", "gelu"], 2
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory(prefix="actlab-bench-sweep-") as tmp:
        common = [
            "data=mnist",
            "model=mlp",
            "model.depth=8",
            "model.width=128",
            "data.batch_size=128",
            f"trainer.max_epochs={args.epochs}",
            f"trainer.precision={args.precision}",
            f"trainer.tf32={str(args.tf32).lower()}",
            f"trainer.compile={str(args.compile).lower()}",
            "trainer.progress=quiet",
            "trainer.checkpoint_every_n_epochs=0",
            f"device={args.device}",
            f"seeds=[{','.join(str(s) for s in range(args.seeds))}]",
            f"run_dir={tmp}/${{activation.name}}/seed${{seed}}",
        ]
        if args.max_k:
            common.append(f"vectorize_max_k={args.max_k}")
        if args.no_probes:
            common += ["probes.dead_units.enabled=false", "probes.grad_flow.enabled=false"]
        groups = [args.activations] if args.group_by == "experiment" else [[a] for a in args.activations]
        jobs = [train.check_composes([*common, f"activations=[{','.join(g)}]"]) for g in groups]
        splits = mnist_like(args.samples)
        device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
        )
        m = machine.machine(device)
        print(
            f"# {m['device_name']}, {os.cpu_count()} CPUs, {m['threads']} threads, torch {m['torch']}, "
            f"{time.strftime('%Y-%m-%d %H:%M')}"
        )
        print(
            f"# {len(args.activations)} activations x {args.seeds} seeds x {args.epochs} epochs, "
            f"{args.samples} samples, batch 128, MLP 8x128, {args.precision}, tf32={args.tf32}, "
            f"compile={args.compile}, probes={'off' if args.no_probes else 'on'}, group_by={args.group_by}"
        )
        t0 = time.perf_counter()
        job_seconds = []
        for job in jobs:
            for part in train.vectorized_parts(job, train.job_configs(job)):
                with contextlib.redirect_stdout(io.StringIO()):
                    s = fit.fit_many(part, splits=splits)
                job_seconds.append((len(part), s[0]["vectorized"]["job_train_seconds"]))
        wall = time.perf_counter() - t0
        models = len(args.activations) * args.seeds
        print(f"vectorised jobs (K, training s): {', '.join(f'({k}, {t:.1f})' for k, t in job_seconds)}")
        print(
            f"total {wall:.1f} s wall for {models} models x {args.epochs} epochs "
            f"({wall / models / args.epochs * 1000:.1f} ms per model-epoch; training only "
            f"{sum(t for _, t in job_seconds):.1f} s)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
