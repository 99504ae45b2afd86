"""Depth study: born-dead probability and collapse of deep, narrow MLPs on a 1-D input
(Lu, Shin, Su & Karniadakis, "Dying ReLU and Initialization: Theory and Numerical Examples",
Commun. Comput. Phys. 28(5), 2020; arXiv:1903.06733).

    python -m actlab.depth --out-dir results/depth [--trials 10000] [--activations relu]
        [--controls leaky_relu] [--control-trials 1000] [--inits he,rai] [--widths 1,2,3,5,10]
        [--depths 2,5,10,20,50] [--collapse/--no-collapse] [--collapse-cells 2x10,3x10]
        [--collapse-min-steps 2000] [--collapse-max-steps 5000] [--quick]

Outputs: born_dead.csv (one row per activation, init, width, depth; `role` = study or control),
collapse.csv (one row per collapse cell and init) and collapse_nets.csv (one row per trained net).
Controls are activations whose derivative never vanishes (leaky_relu, elu, gelu, ...): they can
never be born dead, and run with fewer trials as a check of the test itself.
The command line of the study; its parts:
  actlab.depthnets  the networks: x (scalar) -> [Linear(width) -> f] x depth -> Linear(1) on
                    D = [-sqrt(3), sqrt(3)], He and RAI inits, the exact test of a constant net
  actlab.borndead   P(born dead) per cell, and its theory for ReLU under He init (born_dead.csv)
  actlab.collapse   nets trained on y = |x| to a plateau: which end constant (collapse*.csv)
  actlab.intervals  the Wilson 95% score intervals of every estimated probability
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from actlab import activations, atomic, errors
from actlab.borndead import BORN_DEAD_COLUMNS, born_dead_cell
from actlab.collapse import COLLAPSE_COLUMNS, COLLAPSE_NET_COLUMNS, collapse_group
from actlab.depthnets import INITS
from actlab.errors import Parser, UsageError

# ------------------------------------------------------------------------------------------------
# CLI


def _ints(s: str) -> list[int]:
    try:
        vals = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {s!r}")
    return vals


def _names(s: str) -> list[str]:
    return [v.strip() for v in s.split(",") if v.strip()]


def _cells(s: str) -> list[tuple[int, int]]:
    try:
        cells = [tuple(int(p) for p in c.split("x")) for c in _names(s)]
    except ValueError:
        cells = []
    if not cells or any(len(c) != 2 or min(c) < 1 for c in cells):
        raise argparse.ArgumentTypeError(f"expected WIDTHxDEPTH,... (e.g. 2x10,3x10), got {s!r}")
    return cells


QUICK = {
    "trials": 200,
    "control_trials": 100,
    "widths": [1, 2, 3],
    "depths": [2, 5, 10],
    "collapse_seeds": 16,
    "collapse_min_steps": 100,
    "collapse_max_steps": 200,
    "collapse_cells": [(2, 5)],
}
DEFAULTS = {
    "trials": 10_000,
    "control_trials": 1000,
    "widths": [1, 2, 3, 5, 10],
    "depths": [2, 5, 10, 20, 50],
    "collapse_seeds": 50,
    "collapse_min_steps": 2000,
    "collapse_max_steps": 5000,
    "collapse_cells": [(2, 10), (3, 10)],
}


def parse(argv: list[str]) -> argparse.Namespace:
    ap = Parser(prog="python -m actlab.depth", description="Born-dead probability and collapse of deep narrow MLPs.")
    ap.add_argument("--out-dir", type=Path, default=Path("results/depth"))
    ap.add_argument("--trials", type=int, default=None, help="random inits per born-dead cell (default 10000)")
    ap.add_argument("--activations", type=_names, default=["relu"], help="the studied activations (default relu)")
    ap.add_argument(
        "--controls",
        type=_names,
        default=["leaky_relu"],
        help="controls that can never be born dead (f' never 0), with --control-trials; '' for none",
    )
    ap.add_argument("--control-trials", type=int, default=None, help="random inits per control cell (default 1000)")
    ap.add_argument("--inits", type=_names, default=list(INITS))
    ap.add_argument("--widths", type=_ints, default=None, help="default 1,2,3,5,10")
    ap.add_argument("--depths", type=_ints, default=None, help="hidden layers; default 2,5,10,20,50")
    ap.add_argument("--grid", type=int, default=257, help="grid points on [-sqrt3, sqrt3] (>= 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--collapse", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--collapse-cells", type=_cells, default=None, help="WIDTHxDEPTH list; default 2x10,3x10")
    ap.add_argument("--collapse-activations", type=_names, default=["relu"])
    ap.add_argument("--collapse-seeds", type=int, default=None, help="nets per init and cell; default 50")
    ap.add_argument("--collapse-min-steps", type=int, default=None, help="full-batch Adam steps at least; default 2000")
    ap.add_argument("--collapse-max-steps", type=int, default=None, help="full-batch Adam steps at most; default 5000")
    ap.add_argument("--collapse-window", type=int, default=200, help="plateau window (steps)")
    ap.add_argument(
        "--collapse-tol",
        type=float,
        default=1e-6,
        help="plateau: best loss improved by less than this (relative) over the window",
    )
    ap.add_argument("--collapse-lr", type=float, default=1e-3)
    ap.add_argument("--collapse-points", type=int, default=65, help="training inputs on [-sqrt3, sqrt3] (>= 2)")
    ap.add_argument("--quick", action="store_true", help="small defaults (for tests): " + str(QUICK))
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads (default 1: many small ops, which extra threads slow down)",
    )
    a = ap.parse_args(argv)
    for k, v in (QUICK if a.quick else DEFAULTS).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    for name in (*a.activations, *a.controls, *a.collapse_activations):
        activations.spec(name)  # UnknownActivation names the valid ones
    for name in a.collapse_activations:
        if any(True for _ in activations.build(name, num_features=2).parameters()):
            raise UsageError(
                f"--collapse-activations: {name!r} has learned parameters, which the vectorised "
                f"seeds would share; use a parameter-free activation"
            )
    for init in a.inits:
        if init not in INITS:
            raise UsageError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    both = sorted(set(a.activations) & set(a.controls))
    checks = [
        (a.trials >= 1, f"--trials must be >= 1, got {a.trials}"),
        (a.control_trials >= 1, f"--control-trials must be >= 1, got {a.control_trials}"),
        (not both, f"--activations and --controls share {', '.join(both)}"),
        (a.grid >= 2, f"--grid must be >= 2, got {a.grid}"),
        (a.collapse_seeds >= 1, f"--collapse-seeds must be >= 1, got {a.collapse_seeds}"),
        (a.collapse_min_steps >= 0, f"--collapse-min-steps must be >= 0, got {a.collapse_min_steps}"),
        (
            a.collapse_max_steps >= a.collapse_min_steps,
            f"--collapse-max-steps must be >= --collapse-min-steps, got {a.collapse_max_steps}",
        ),
        (a.collapse_window >= 1, f"--collapse-window must be >= 1, got {a.collapse_window}"),
        (a.collapse_tol >= 0 and math.isfinite(a.collapse_tol), f"--collapse-tol must be >= 0, got {a.collapse_tol}"),
        (a.collapse_lr > 0 and math.isfinite(a.collapse_lr), f"--collapse-lr must be > 0, got {a.collapse_lr}"),
        (a.collapse_points >= 2, f"--collapse-points must be >= 2, got {a.collapse_points}"),
        (a.threads >= 1, f"--threads must be >= 1, got {a.threads}"),
        (bool(a.activations) and bool(a.inits), "--activations and --inits must not be empty"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UsageError(msg)
    for key in ("activations", "controls", "inits", "widths", "depths", "collapse_activations", "collapse_cells"):
        setattr(a, key, list(dict.fromkeys(getattr(a, key))))  # drop repeats, keep the order
    try:  # fail before the computation, not after it
        a.out_dir.mkdir(parents=True, exist_ok=True)
        probe = a.out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--out-dir {str(a.out_dir)!r} is not writable: {e.strerror}") from None
    return a


def run(a: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Compute the tables and write them atomically into a.out_dir."""
    torch.set_num_threads(a.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    cells = [(act, "study", a.trials) for act in a.activations] + [
        (act, "control", a.control_trials) for act in a.controls
    ]
    rows = [
        {**born_dead_cell(act, init, w, d, trials, a.grid, a.seed), "role": role}
        for act, role, trials in cells
        for init in a.inits
        for w in a.widths
        for d in a.depths
    ]
    born = pd.DataFrame(rows, columns=BORN_DEAD_COLUMNS)
    atomic.write_csv(a.out_dir / "born_dead.csv", born)
    t1, c1 = time.perf_counter(), time.process_time()
    print(
        f"born_dead.csv: {len(born)} cells ({a.trials} trials, controls {a.control_trials}) in {t1 - t0:.1f}s "
        f"({c1 - c0:.1f}s CPU)",
        flush=True,
    )
    collapse = None
    if a.collapse:
        rows, nets = [], []
        by_depth: dict[int, list[int]] = {}
        for w, d in a.collapse_cells:  # the cells of one depth train as one batch (collapse_group)
            by_depth.setdefault(d, []).append(w)
        for act in a.collapse_activations:
            for d, ws in by_depth.items():
                r, n = collapse_group(
                    act,
                    a.inits,
                    ws,
                    d,
                    a.collapse_seeds,
                    a.collapse_lr,
                    a.grid,
                    a.seed,
                    a.collapse_points,
                    a.collapse_min_steps,
                    a.collapse_max_steps,
                    a.collapse_window,
                    a.collapse_tol,
                )
                rows += r
                nets.append(n)
        collapse = pd.DataFrame(rows, columns=COLLAPSE_COLUMNS)
        per_net = pd.concat(nets, ignore_index=True)[COLLAPSE_NET_COLUMNS]
        atomic.write_csv(a.out_dir / "collapse_nets.csv", per_net)
        atomic.write_csv(a.out_dir / "collapse.csv", collapse)
        print(
            f"collapse.csv: {len(collapse)} cells x {a.collapse_seeds} seeds, {int(collapse['steps'].min())}-"
            f"{int(collapse['steps'].max())} steps, in {time.perf_counter() - t1:.1f}s "
            f"({time.process_time() - c1:.1f}s CPU)",
            flush=True,
        )
        bad = per_net[per_net["born_dead"] & ~per_net["ended_constant"]]
        if len(bad):  # Lu et al.: a born-dead net is trained to a constant; recorded, and said loudly
            print(f"warning: {len(bad)} born-dead nets did not end constant (collapse_nets.csv)", file=sys.stderr)
    return born, collapse


def main(argv: list[str] | None = None) -> None:
    errors.main(lambda args: run(parse(args)), argv)


if __name__ == "__main__":
    main()
