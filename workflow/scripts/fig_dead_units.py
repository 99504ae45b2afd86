"""Figure 4: units that pass no gradient, and units that carry no information, over training.

Panels = hidden layers (hidden layer 1 = nearest the input), at most 4 side by side: a deeper net's
layers wrap into further blocks of rows. One line per activation, mean across seeds; epoch 0 = at
initialisation. In each block the top row is the no-gradient fraction (|f'(z)| <= 1% of the
activation's own peak slope on every probe input: a dead ReLU unit and a saturated tanh or sigmoid
unit alike, so every activation can be non-zero; actlab.probes), the bottom row the low-variance
fraction (output variance at most 1% of the layer's mean: a unit whose output is nearly constant,
whatever the constant). Lines that coincide (often all at 0%) stay visible: each activation has its
own marker, and the markers of different activations sit on different epochs.
"""

from __future__ import annotations

import figlib
import pandas as pd
from matplotlib.ticker import MaxNLocator

# What the pipeline needs to know (workflow/rules/figures.smk reads it with ast.literal_eval, without
# importing this script; docs/extending.md): caption: workflow/report/dead_units.rst
FIGURE = {
    "number": 4,
    "title": "dead units",
    "scope": "experiment",
    "inputs": {"curves": "curves/dead_units.parquet"},
}

ROWS = {"no_gradient_fraction": "no gradient", "low_variance_fraction": "low variance"}
MAX_COLS = 4  # layers side by side; more wrap into another block of rows


def layer_means(df: pd.DataFrame) -> pd.DataFrame:
    """Mean across seeds per (metric, activation, layer, epoch), only the two headline measures."""
    df = df[df["metric"].isin(list(ROWS))]
    return df.groupby(["metric", "activation", "layer", "epoch"], as_index=False)["value"].mean()


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0], experiment=True)
    p.add_argument("--curves", required=True)
    args = figlib.parse(p, argv)
    figlib.setup()
    df = figlib.subset(pd.read_parquet(args.curves), args.experiment, args.curves)
    mean = layer_means(df)
    if mean.empty:
        figlib.fail(
            f"error: {args.curves} has no no_gradient_fraction or low_variance_fraction rows "
            f"for experiment {args.experiment} (runs from before these probes: rerun them)"
        )
    acts = figlib.ordered(mean["activation"].unique(), args.activations)
    layers = sorted(mean["layer"].unique(), key=figlib.names.layer_order)
    rows = [m for m in ROWS if m in set(mean["metric"])]
    n_epochs = mean["epoch"].nunique()
    # one marker every len(acts) epochs, activation i's starting at epoch i: no two activations put a
    # marker on the same epoch (when there are enough epochs), so coinciding lines all show
    every = max(1, min(len(acts), n_epochs))

    # at most MAX_COLS layers side by side: a deep net's layers wrap into blocks of rows (one row per
    # measure in each block), so its figure keeps the column's width readable
    n_cols = min(len(layers), MAX_COLS)
    blocks = -(-len(layers) // n_cols)
    fig, axes = figlib.plt.subplots(
        blocks * len(rows),
        n_cols,
        figsize=(2.6 * n_cols + 1.6, 2.1 * blocks * len(rows) + 0.6),
        sharex=True,
        squeeze=False,
    )
    for r, metric in enumerate(rows):
        sub = mean[mean["metric"] == metric]
        top = max(0.05, float(sub["value"].max()) * 1.15)  # one y range per measure, in every block
        for j, layer in enumerate(layers):
            block, c = divmod(j, n_cols)
            ax = axes[block * len(rows) + r][c]
            for i, act in enumerate(acts):
                g = sub[(sub["activation"] == act) & (sub["layer"] == layer)].sort_values("epoch")
                ax.plot(
                    g["epoch"],
                    g["value"],
                    color=figlib.color(act),
                    lw=1.2,
                    alpha=0.85,
                    marker=figlib.marker(i),
                    ms=3.5,
                    markevery=(i % every, every),
                    label=figlib.label(act),
                    zorder=2 + i * 0.01,
                )
            ax.grid(True, color="0.92", lw=0.6)
            ax.set_ylim(-0.03 * top, min(1.02, top))  # a line at 0% sits inside the panel, not on its edge
            figlib.percent_axis(ax.yaxis, top)
            if c > 0:
                ax.tick_params(labelleft=False)
            else:
                ax.set_ylabel(f"{ROWS[metric]}\n(% of the layer's units)")
            if r == 0:
                ax.set_title(figlib.layer(layer))
            if r == len(rows) - 1 and j + n_cols >= len(layers):  # the lowest panel of its column
                ax.set_xlabel("epoch (0 = initialisation)")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.tick_params(labelbottom=True)
    for j in range(len(layers), blocks * n_cols):  # the last block's empty places
        for r in range(len(rows)):
            axes[(blocks - 1) * len(rows) + r][j % n_cols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(
        f"Units that pass no gradient and carry no information, {args.label}: mean across seeds",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    figlib.save(
        fig,
        args.out,
        __file__,
        f"Units without gradient ({args.label})",
        inputs=[args.curves],
    )


if __name__ == "__main__":
    main()
