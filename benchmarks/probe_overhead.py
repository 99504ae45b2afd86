"""Probe overhead: the digits MLP trained with probes off vs on, in one process.

    python benchmarks/probe_overhead.py [--repeats 7] [--epochs 20] [--threads N]

Runs alternate off/on (so drift in machine load hits both arms alike) and compare the median
`train_seconds` of actlab.train.run (the trainer.fit wall time: training, validation and callbacks;
not data loading or the test pass), and the median process CPU time of the whole run (fit + data +
test: less sensitive to other jobs on a shared machine, slightly diluted by the fixed costs).
Prints one line per run and the on/off ratios of the medians. On a shared 2-core machine use
--threads 1: with 2 threads a competing job stalls torch's thread pool and the times explode.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from actlab import train


def one_run(probes_on: bool, epochs: int, run_dir: Path, seed: int, threads: int | None) -> tuple[float, float]:
    """(fit wall seconds, process CPU seconds of the whole run) for one run."""
    overrides = [f"run_dir={run_dir}", f"seed={seed}", f"trainer.max_epochs={epochs}", "trainer.progress=quiet",
                 f"probes.dead_units.enabled={probes_on}", f"probes.grad_flow.enabled={probes_on}"]
    if threads:
        overrides.append(f"trainer.threads={threads}")
    with initialize_config_dir(str(train.CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    cpu = time.process_time()
    wall = train.run(cfg)["train_seconds"]
    return wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None, help="trainer.threads (default: the config's)")
    args = ap.parse_args()
    import contextlib
    import io

    import torch

    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for on in (False, True):  # warm-up, not timed: imports, thread pools, first autograd use
            with contextlib.redirect_stdout(io.StringIO()):
                one_run(on, 2, Path(tmp) / f"warmup{int(on)}", 0, args.threads)
        for r in range(args.repeats):
            for on in (False, True):
                with contextlib.redirect_stdout(io.StringIO()):  # the per-epoch lines
                    t = one_run(on, args.epochs, Path(tmp) / f"r{r}_{int(on)}", 0, args.threads)
                times[on].append(t)
                print(f"repeat {r}  probes {'on ' if on else 'off'}  train_seconds {t[0]:.3f}  cpu {t[1]:.3f}",
                      flush=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, digits MLP 2x128, "
          f"{args.epochs} epochs, {args.repeats} repeats")
    for i, what in enumerate(("fit wall", "run cpu")):
        off = statistics.median(t[i] for t in times[False])
        on = statistics.median(t[i] for t in times[True])
        print(f"{what}: median off {off:.3f}s  on {on:.3f}s  ratio {on / off:.3f}  "
              f"overhead {100 * (on / off - 1):+.1f}%")


if __name__ == "__main__":
    sys.exit(main())
