"""The study's design as the article shows it: the learning-rate selection (results/stats/
lr_selection.csv) and the reproduction of published MNIST-1D baselines. Each function returns the
glue values of one section of the results page (paper/results.md); it only reads results/."""

from __future__ import annotations

import bookdata as bd
import numpy as np
from IPython.display import Markdown

# Published MNIST-1D test accuracies with ReLU models (Greydanus & Kobak 2024; ../shared/REFERENCES.md):
# the package README's figures and the benchmark notebook's single run at 6,000 steps (Adam, lr 1e-2,
# batch 100). Their MLP is 40-100-100-10 with a residual connection; their CNN three Conv1d layers.
PUBLISHED = {
    "mlp": {"readme": 0.68, "notebook": 0.651, "what": "MLP 40–100–100–10 (with a residual connection)"},
    "cnn": {"readme": 0.94, "notebook": 0.923, "what": "CNN, three Conv1d layers of 25 channels"},
}


def lr_selection() -> dict:
    """The learning-rate selection table: per experiment, each activation's mean best validation
    accuracy at every rate of the grid, the chosen one in bold."""
    if not bd.exists("stats/lr_selection.csv"):
        note = "This sweep gives every activation the configured learning rate (no `lr_selection`)."
        return {"lr_table": Markdown(f"*{note}*"), "lr_grid": "not used", "lr_seeds": "none", "lr_edges": ""}
    t = bd.table("stats/lr_selection.csv")
    grid = sorted(t["lr"].unique())
    rows = []
    for exp in [e for e in bd.experiments() if e in set(t["experiment"])]:
        sub = t[t["experiment"] == exp]
        rows += [f"**{bd.experiment_name(exp)}**", "", "| activation | " + " | ".join(f"lr {g:g}" for g in grid) + " |"]
        rows.append("|---|" + "---:|" * len(grid))
        for act in [a for a in bd.activations(exp) if a in set(sub["activation"])]:
            cells = []
            for g in grid:
                r = sub[(sub["activation"] == act) & (sub["lr"] == g)]
                if r.empty:
                    cells.append("–")
                    continue
                r = r.iloc[0]
                text = bd.pct(r["mean"], unit=False) if r["metric"] == "best_val_acc" else f"{r['mean']:.4g}"
                text += f" ({int(r['n_diverged'])} diverged)" if r["n_diverged"] else ""
                cells.append(f"**{text}**" if r["chosen"] else text)
            rows.append(f"| {bd.name(act)} | " + " | ".join(cells) + " |")
        rows.append("")
    seeds = int(t["n_seeds"].max())
    return {
        "lr_table": Markdown("\n".join(rows)),
        "lr_grid": bd.join(f"{g:g}" for g in grid),
        "lr_seeds": f"{seeds} selection seed{'s' if seeds != 1 else ''}",
        "lr_edges": grid_edges(t[t["chosen"].astype(bool)], grid),
    }


def grid_edges(chosen, grid) -> str:
    """A sentence on the chosen rates at the grid's ends, where the best rate may lie outside it."""
    if len(grid) < 2:
        return "The grid has one rate: nothing was chosen."
    top, bottom = int((chosen["lr"] == max(grid)).sum()), int((chosen["lr"] == min(grid)).sum())
    if top == bottom == 0:
        return "Every chosen rate lies inside the grid."
    return (
        f"{top} of the {len(chosen)} chosen rates are the grid's largest ({max(grid):g}) and {bottom} its "
        f"smallest ({min(grid):g}): for those the best rate may lie outside the grid, so they may be "
        "somewhat under-tuned. That is a limit of this selection; each further rate in the grid costs one "
        "more selection job per experiment."
    )


def reproduction() -> dict:
    """Our ReLU MLP (2 hidden layers) and CNN on MNIST-1D beside the published numbers."""
    head = (
        "| model | ours: test accuracy, % [95% CI] | seeds | our training | published (README) "
        "| published (notebook, 1 run) |\n|---|---:|---:|---|---:|---:|"
    )
    rows, acc = [head], bd.accuracy()
    for model in ("mlp", "cnn"):
        exps = [
            e
            for e in bd.experiments()
            if bd.experiment_info(e)["dataset"] == "mnist1d"
            and bd.experiment_info(e)["model"] == model
            and (model != "mlp" or int(bd.experiment_info(e)["depth"]) == 2)
        ]
        pub = PUBLISHED[model]
        if not exps:
            rows.append(
                f"| {pub['what']} | not in this sweep (the paper sweep runs it) | | | "
                f"{bd.pct(pub['readme'], 0, unit=False)} | {bd.pct(pub['notebook'], unit=False)} |"
            )
            continue
        exp = exps[0]
        r = acc[(acc["experiment"] == exp) & (acc["activation"] == "relu") & (acc["metric"] == "test_acc")]
        if r.empty:
            continue
        r = r.iloc[0]
        cfg = bd.run_config(exp)
        s = bd.of_experiment(bd.summary(), exp)
        relu = s[s["activation"] == "relu"]
        steps = int(np.ceil(int(relu["epochs"].max()) * _n_train(relu) / cfg["data"]["batch_size"]))
        ours = (
            f"{bd.pct(r['mean'], unit=False)} [{bd.pct(r['ci_low'], unit=False)}, {bd.pct(r['ci_high'], unit=False)}]"
        )
        train = (
            f"{bd.experiment_name(exp)}, {bd.optimizer_name(cfg['optimizer']['name'])} lr "
            f"{relu['lr'].iloc[0]:g}, {int(relu['epochs'].max())} epochs (~{steps:,} steps of {cfg['data']['batch_size']})"
        )
        rows.append(
            f"| {pub['what']} | {ours} | {int(r['n'])} | {train} | {bd.pct(pub['readme'], 0, unit=False)} "
            f"| {bd.pct(pub['notebook'], unit=False)} |"
        )
    return {"reproduction_table": Markdown("\n".join(rows))}


def _n_train(runs) -> int:
    """Training-set size of these runs (data_provenance.n_train when recorded)."""
    col = "data_provenance.n_train"
    return int(runs[col].iloc[0]) if col in runs and np.isfinite(runs[col].iloc[0]) else 0
