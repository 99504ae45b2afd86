"""Figure 8: the study across network depth: accuracy, gradient size per layer, units without gradient.

One column per network depth (hidden layers, the `depth` column of results/summary.parquet) of one
(dataset, model); one colour and marker per activation throughout.
  top:     test accuracy (%) against depth, mean across seeds with its 95% t-interval, the
           activations side by side around each depth. With a single depth in the sweep this is
           one column of intervals, and the figure says so.
  rows 2-3: RMS gradient per weight (grad_rms, log axis) of each weight layer, hidden layer 1 to the
           output layer, at the first optimiser step (the initialisation's gradient) and at the
           last; geometric mean across seeds; activations side by side around each layer. A gradient that shrinks towards the input shows as a
           line falling to the left.
  bottom:  fraction of all hidden units passing no gradient (no_gradient_fraction, layers weighted
           by their size) over training, mean across seeds.
Curves are matched to their run's depth through the summary (experiment, activation, seed).
"""

from __future__ import annotations

import figlib
import numpy as np
import pandas as pd
from matplotlib.gridspec import GridSpec
from matplotlib.ticker import MaxNLocator

from actlab.stats import t_interval

# What the pipeline needs to know (workflow/rules/figures.smk reads it with ast.literal_eval, without
# importing this script; docs/extending.md): caption: workflow/report/across_depth.rst
FIGURE = {
    "number": 8,
    "title": "across depth",
    "scope": "group",
    "inputs": {
        "summary": "summary.parquet",
        "grad_flow": "curves/grad_flow.parquet",
        "dead_units": "curves/dead_units.parquet",
    },
}

KEY = ["experiment", "activation", "seed"]


def with_depth(curves: pd.DataFrame, runs: pd.DataFrame, where: str) -> pd.DataFrame:
    """The curves with each run's `depth` (from the summary) as a column. Curves that carry their own
    depth keep it; otherwise (experiment, activation, seed) must name one run."""
    if "depth" in curves.columns:
        return curves
    if runs.duplicated(KEY).any():
        figlib.fail(
            f"error: {where} has no depth column, and runs of several depths share "
            f"(experiment, activation, seed): cannot tell their curves apart"
        )
    return curves.merge(runs[[*KEY, "depth"]], on=KEY, how="inner")


def accuracy_by_depth(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (activation, depth): mean and 95% t-interval of test accuracy across seeds."""
    rows = [
        {"activation": a, "depth": d, **t_interval(g["test_acc"].dropna())}
        for (a, d), g in runs.groupby(["activation", "depth"], sort=True)
    ]
    return pd.DataFrame(rows)


def grad_profile(grad: pd.DataFrame, which: str) -> pd.DataFrame:
    """grad_rms per (activation, depth, layer) at each run's first or last recorded step
    (`which` = "first" | "last"), as log10, mean across seeds."""
    g = grad[(grad["metric"] == "grad_rms") & ~grad["layer"].astype(str).str.contains("/")]
    pick = g.groupby([*KEY, "depth"])["step"].transform("min" if which == "first" else "max")
    g = g[g["step"] == pick].copy()
    g["log10"] = np.log10(g["value"].astype(float).clip(lower=1e-30))
    return g.groupby(["activation", "depth", "layer"], as_index=False)["log10"].mean()


def no_gradient_total(dead: pd.DataFrame) -> pd.DataFrame:
    """Per (activation, depth, epoch): the no-gradient fraction of all hidden units (layers weighted
    by n_units), mean across seeds."""
    idx = [*KEY, "depth", "epoch", "layer"]
    frac = dead[dead["metric"] == "no_gradient_fraction"].set_index(idx)["value"]
    size = dead[dead["metric"] == "n_units"].set_index(idx)["value"].reindex(frac.index).fillna(1.0)
    both = pd.DataFrame({"frac": frac * size, "size": size}).groupby([*KEY, "depth", "epoch"]).sum()
    per_run = (both["frac"] / both["size"]).rename("value").reset_index()
    return per_run.groupby(["activation", "depth", "epoch"], as_index=False)["value"].mean()


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0], group=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--grad-flow", required=True, help="results/curves/grad_flow.parquet")
    p.add_argument("--dead-units", required=True, help="results/curves/dead_units.parquet")
    args = figlib.parse(p, argv)
    figlib.setup()
    runs = figlib.subset_group(pd.read_parquet(args.summary), args.dataset, args.model, args.summary)
    if "depth" not in runs or runs["depth"].isna().all():
        figlib.fail(f"error: {args.summary} has no depth column for {args.dataset}/{args.model}")
    runs = runs[runs["depth"].notna()].astype({"depth": int})
    grad = figlib.subset_group(pd.read_parquet(args.grad_flow), args.dataset, args.model, args.grad_flow)
    grad = with_depth(grad, runs, args.grad_flow)
    dead = figlib.subset_group(pd.read_parquet(args.dead_units), args.dataset, args.model, args.dead_units)
    dead = with_depth(dead, runs, args.dead_units)
    acts = figlib.ordered(runs["activation"].unique(), args.activations)
    depths = sorted(runs["depth"].unique())
    style = {a: dict(color=figlib.color(a), marker=figlib.marker(i), label=figlib.label(a)) for i, a in enumerate(acts)}

    ncol = len(depths)
    fig = figlib.plt.figure(figsize=(max(3.0 * ncol, 4.2) + 1.6, 9.4))
    gs = GridSpec(4, ncol, figure=fig, height_ratios=[1.1, 1, 1, 1])

    # top: accuracy against depth (one panel across all columns)
    ax = fig.add_subplot(gs[0, :])
    acc = accuracy_by_depth(runs)
    # depths as evenly spaced categories (2 and 8 side by side, not 6 units apart), the activations
    # side by side around each (dodged within +-0.3), so no interval hides another
    at = {d: i for i, d in enumerate(depths)}
    width = 0.6 / len(acts)
    for i, a in enumerate(acts):
        r = acc[acc["activation"] == a].sort_values("depth")
        ax.errorbar(
            r["depth"].map(at) + (i - (len(acts) - 1) / 2) * width,
            r["mean"],
            yerr=[r["mean"] - r["ci_low"], r["ci_high"] - r["mean"]],
            ms=4,
            lw=1.2,
            capsize=2,
            alpha=0.85,
            **style[a],
        )
    ax.set_xlabel("network depth (hidden layers)")
    ax.set_ylabel("test accuracy")
    ax.set_xticks(range(len(depths)), [str(d) for d in depths])
    ax.set_xlim(-0.5, len(depths) - 0.5)
    if len(depths) == 1:
        ax.set_title(
            f"this sweep has one depth ({depths[0]} hidden layers): a sweep over model.depth "
            f"draws accuracy against depth",
            fontsize=8,
            loc="left",
        )
    lo, hi = float(acc["ci_low"].min()), float(acc["ci_high"].max())
    figlib.percent_axis(ax.yaxis, hi - lo if np.isfinite(hi - lo) else 1.0)
    ax.grid(True, color="0.92", lw=0.6)

    # rows 2-3: gradient size per weight layer, at the start and the end of training
    for row, which in ((1, "first"), (2, "last")):
        prof = grad_profile(grad, which)
        share = None
        for c, depth in enumerate(depths):
            ax = fig.add_subplot(gs[row, c], sharey=share)
            share = share or ax
            sub = prof[prof["depth"] == depth]
            layers = sorted(sub["layer"].unique(), key=figlib.names.layer_order)
            pos = {layer: i for i, layer in enumerate(layers)}
            for i, a in enumerate(acts):
                r = sub[sub["activation"] == a].sort_values("layer", key=lambda s: s.map(pos))
                shift = (i - (len(acts) - 1) / 2) * 0.3 / len(acts)  # dodged: equal values stay visible
                ax.plot(r["layer"].map(pos) + shift, 10 ** r["log10"], lw=1.1, ms=3.5, alpha=0.85, **style[a])
            ax.set_yscale("log")
            ax.set_xticks(
                range(len(layers)), ["out" if name == "out" else figlib.names.layer_order(name)[1] for name in layers]
            )
            ax.set_xlabel("weight layer (hidden layer 1 ... output)")
            ax.set_title(f"{depth} hidden layers, {'first' if which == 'first' else 'last'} step", fontsize=8)
            ax.grid(True, which="major", color="0.92", lw=0.6)
            if c == 0:
                ax.set_ylabel("RMS gradient per weight")

    # bottom: units passing no gradient over training
    ng = no_gradient_total(dead)
    share = None
    top = max(0.05, float(ng["value"].max()) * 1.15) if len(ng) else 1.0
    for c, depth in enumerate(depths):
        ax = fig.add_subplot(gs[3, c], sharey=share)
        share = share or ax
        sub = ng[ng["depth"] == depth]
        every = max(1, min(len(acts), sub["epoch"].nunique()))
        for i, a in enumerate(acts):
            r = sub[sub["activation"] == a].sort_values("epoch")
            ax.plot(r["epoch"], r["value"], lw=1.1, ms=3.5, alpha=0.85, markevery=(i % every, every), **style[a])
        ax.set_ylim(-0.03 * top, min(1.02, top))
        figlib.percent_axis(ax.yaxis, top)
        ax.set_xlabel("epoch (0 = initialisation)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{depth} hidden layers", fontsize=8)
        ax.grid(True, color="0.92", lw=0.6)
        if c == 0:
            ax.set_ylabel("units passing no gradient\n(% of all hidden units)")

    handles = [figlib.plt.Line2D([], [], lw=1.1, ms=4, **style[a]) for a in acts]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(
        f"Across depth, {figlib.experiment(args.dataset, args.model)}: accuracy, gradient size per layer, "
        f"units without gradient",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    figlib.save(
        fig,
        args.out,
        __file__,
        f"Across depth ({figlib.experiment(args.dataset, args.model)})",
        inputs=[args.summary, args.grad_flow, args.dead_units],
    )


if __name__ == "__main__":
    main()
