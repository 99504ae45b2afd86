"""Probe overhead: the digits MLP trained with probes off vs on, in one process.

    python benchmarks/probe_overhead.py [--repeats 11] [--epochs 20] [--threads 1]

Each repeat runs actlab.train.run twice, probes off then on (alternating, so drift in machine load
hits both arms alike), at the default probe intervals. Timed: `trainer.fit` only (training,
validation and the callbacks; not data loading, model building or the test pass), both as wall
time and as process CPU time (less sensitive to other jobs on a shared machine). Prints the median
of each arm and the on/off ratios, plus the time spent inside the probe callbacks' own hooks
(the rest of the difference is Lightning dispatching the extra callbacks' hooks).
On a shared 2-core machine keep --threads 1: with 2 threads a competing job stalls torch's thread
pool and the times explode for both arms.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir

from actlab import probes, train

FIT: list[tuple[float, float]] = []  # (wall, cpu) of each trainer.fit
HOOKS = [0.0]  # seconds inside DeadUnits / GradFlow hooks


def _timed(fn, sink):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            sink(time.perf_counter() - wall, time.process_time() - cpu)

    return wrapper


def instrument() -> None:
    pl.Trainer.fit = _timed(pl.Trainer.fit, lambda w, c: FIT.append((w, c)))
    for cls in (probes.DeadUnits, probes.GradFlow):
        for name, fn in list(vars(cls).items()):
            if name.startswith("on_"):
                setattr(cls, name, _timed(fn, lambda w, c: HOOKS.__setitem__(0, HOOKS[0] + w)))


def one_run(probes_on: bool, epochs: int, run_dir: Path, threads: int) -> tuple[float, float, float]:
    """(fit wall, fit CPU, probe hook wall) seconds of one run."""
    overrides = [
        f"run_dir={run_dir}",
        "seed=0",
        f"trainer.max_epochs={epochs}",
        "trainer.progress=quiet",
        f"trainer.threads={threads}",
        f"probes.dead_units.enabled={probes_on}",
        f"probes.grad_flow.enabled={probes_on}",
    ]
    with initialize_config_dir(str(train.CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    HOOKS[0] = 0.0
    with contextlib.redirect_stdout(io.StringIO()):  # the per-epoch lines
        train.run(cfg)
    return (*FIT[-1], HOOKS[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="trainer.threads")
    args = ap.parse_args()
    instrument()
    times: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for on in (False, True):  # warm-up, not timed: imports, thread pools, first autograd use
            one_run(on, 2, Path(tmp) / f"warmup{int(on)}", args.threads)
        for r in range(args.repeats):
            for on in (False, True):
                t = one_run(on, args.epochs, Path(tmp) / f"r{r}_{int(on)}", args.threads)
                times[on].append(t)
                print(
                    f"repeat {r:2d}  probes {'on ' if on else 'off'}  fit wall {t[0]:.3f}s  cpu {t[1]:.3f}s"
                    + (f"  in probe hooks {t[2] * 1e3:.1f} ms" if on else ""),
                    flush=True,
                )
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), digits MLP 2x128, {args.epochs} epochs, "
        f"{args.repeats} repeats, default probe intervals"
    )
    med = {on: [statistics.median(t[i] for t in times[on]) for i in range(3)] for on in (False, True)}
    for i, what in enumerate(("fit wall", "fit cpu ")):
        off, on = med[False][i], med[True][i]
        print(
            f"{what}: median off {off:.3f}s  on {on:.3f}s  ratio {on / off:.3f}  overhead {100 * (on / off - 1):+.1f}%"
        )
    print(
        f"inside the probe hooks: median {med[True][2] * 1e3:.1f} ms = "
        f"{100 * med[True][2] / med[False][0]:.1f}% of the probes-off fit wall time"
    )


if __name__ == "__main__":
    sys.exit(main())
