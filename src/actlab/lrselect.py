"""Each activation's learning rate, chosen on the validation split (python -m actlab.lrselect).

The pipeline (rules train_lr, select_lr) trains every activation at every learning rate of the
sweep's grid (`lr_selection.grid`) on selection seeds of their own (`lr_selection.seeds`, disjoint
from the study's seeds), each for the experiment's full number of epochs: the same budget for every
activation. This module reads those runs' summary.json files and picks, per activation, the
learning rate with the highest mean best validation accuracy over the selection seeds (regression:
the lowest mean best validation loss). A diverged run scores the worst possible (accuracy 0, loss
+inf), so a rate that diverges on any seed is chosen only if every rate diverges. Ties go to the
smaller rate. The test split is never looked at.

Writes one table (CSV, atomically): per (experiment, activation, lr) the number of selection
seeds, the mean and standard deviation of the score, and `chosen` (one true row per activation).
`--combine` concatenates such tables (the sweep's lr_selection.csv, for the article).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from actlab import atomic

COLUMNS = ["experiment", "activation", "lr", "n_seeds", "n_diverged", "metric", "mean", "std", "chosen"]


def score(summary: dict) -> tuple[str, float]:
    """(metric, value) of one selection run: best validation accuracy, or loss for regression."""
    if summary.get("task", "classification") == "regression":
        v = summary.get("best_val_loss", math.nan)
        return "best_val_loss", (math.inf if summary.get("diverged") or not math.isfinite(v) else float(v))
    v = summary.get("best_val_acc", math.nan)
    return "best_val_acc", (0.0 if summary.get("diverged") or not math.isfinite(v) else float(v))


def select(summaries: list[dict]) -> pd.DataFrame:
    """The selection table of the runs `summaries` (one or more experiments)."""
    rows = []
    for s in summaries:
        metric, value = score(s)
        rows.append(
            {
                "experiment": s["experiment"],
                "activation": s["activation"],
                "lr": float(s["lr"]),
                "seed": s["seed"],
                "metric": metric,
                "value": value,
                "diverged": bool(s.get("diverged")),
            }
        )
    if not rows:
        raise ValueError("no selection runs given")
    runs = pd.DataFrame(rows)
    out = (
        runs.groupby(["experiment", "activation", "lr", "metric"], sort=True)
        .agg(
            n_seeds=("seed", "nunique"),
            n_diverged=("diverged", "sum"),
            mean=("value", "mean"),
            std=("value", "std"),
        )
        .reset_index()
    )
    out["chosen"] = False
    for _, g in out.groupby(["experiment", "activation"]):
        lower_is_better = g["metric"].iloc[0] == "best_val_loss"
        best = g["mean"].min() if lower_is_better else g["mean"].max()
        out.loc[g[g["mean"] == best]["lr"].idxmin(), "chosen"] = True  # ties: the smaller rate
    return out[COLUMNS]


def chosen(table: pd.DataFrame) -> dict[str, float]:
    """{activation: chosen lr} of one experiment's selection table."""
    return {r.activation: float(r.lr) for r in table[table["chosen"]].itertuples()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="the selection table (CSV)")
    p.add_argument("inputs", nargs="+", type=Path, help="selection runs' summary.json (or tables, with --combine)")
    p.add_argument("--combine", action="store_true", help="concatenate selection tables instead")
    args = p.parse_args(argv)
    try:
        if args.combine:
            table = pd.concat([pd.read_csv(f) for f in args.inputs], ignore_index=True)[COLUMNS]
        else:
            table = select([json.loads(f.read_text()) for f in args.inputs])
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    with atomic.atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    for r in table[table["chosen"]].itertuples():
        print(f"{r.experiment} {r.activation}: lr {r.lr:g} ({r.metric} {r.mean:.4f} over {r.n_seeds} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
