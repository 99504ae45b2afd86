"""Probe overhead: the digits MLP trained with probes off vs on, in one process.

    python benchmarks/probe_overhead.py [--repeats 5] [--epochs 20]

Runs alternate off/on (so drift in machine load hits both arms alike) and compare the median
`train_seconds` of actlab.train.run (the trainer.fit wall time: training, validation and callbacks;
not data loading or the test pass). Prints one line per run and the ratio on/off of the medians.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir

from actlab import train


def one_run(probes_on: bool, epochs: int, run_dir: Path, seed: int) -> float:
    overrides = [f"run_dir={run_dir}", f"seed={seed}", f"trainer.max_epochs={epochs}", "trainer.progress=quiet",
                 f"probes.dead_units.enabled={probes_on}", f"probes.grad_flow.enabled={probes_on}"]
    with initialize_config_dir(str(train.CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return train.run(cfg)["train_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    import contextlib
    import io

    import torch

    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        one_run(False, 1, Path(tmp) / "warmup", 0)  # imports, thread pools, allocator
        for r in range(args.repeats):
            for on in (False, True):
                with contextlib.redirect_stdout(io.StringIO()):  # the per-epoch lines
                    t = one_run(on, args.epochs, Path(tmp) / f"r{r}_{int(on)}", seed=0)
                times[on].append(t)
                print(f"repeat {r}  probes {'on ' if on else 'off'}  train_seconds {t:.3f}", flush=True)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, digits MLP 2x128, "
          f"{args.epochs} epochs, {args.repeats} repeats")
    print(f"median off {off:.3f}s  on {on:.3f}s  ratio {on / off:.3f}  overhead {100 * (on / off - 1):+.1f}%")


if __name__ == "__main__":
    sys.exit(main())
