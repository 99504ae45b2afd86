"""Figure 4: dead, dormant and saturated fraction of each hidden layer over training.

One panel per activation; colour = layer (act1 = first hidden layer), line style = metric:
dead (f'(z) = 0 on every probe input, solid), tau-dormant (Sokar et al. 2023, dashed) and, for
tanh/sigmoid, saturated (dotted). Mean across seeds; epoch 0 = at initialisation.
"""
from __future__ import annotations

import figlib
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

METRICS = {"dead_fraction": ("dead", "-"), "dormant_fraction": ("dormant", "--"),
           "saturated_fraction": ("saturated", ":")}


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0], experiment=True)
    p.add_argument("--curves", required=True)
    args = p.parse_args(argv)
    figlib.setup()
    df = figlib.subset(pd.read_parquet(args.curves), args.dataset, args.model, args.curves)
    df = df[df["metric"].isin(list(METRICS))]
    mean = df.groupby(["activation", "layer", "metric", "epoch"], as_index=False)["value"].mean()
    acts = figlib.ordered(mean["activation"].unique(), args.activations)
    layers = sorted(mean["layer"].unique(), key=lambda s: (len(s), s))
    colors = sns.color_palette("Dark2", len(layers)) if len(layers) <= 8 else sns.color_palette("viridis", len(layers))
    palette = dict(zip(layers, colors))

    fig, axes = figlib.panel_grid(len(acts), ncols=4, width=2.3, height=1.8, sharex=True, sharey=True)
    for ax, act in zip(axes, acts):
        sub = mean[mean["activation"] == act]
        for (layer, metric), g in sub.groupby(["layer", "metric"], sort=False):
            ax.plot(g["epoch"], g["value"], color=palette[layer], ls=METRICS[metric][1], lw=1.3)
        ax.set_title(figlib.label(act))
        ax.grid(True, color="0.92", lw=0.6)
    top = max(0.05, float(mean["value"].max()) * 1.1) if not mean.empty else 1.0
    axes[0].set_ylim(-0.02 * top, min(1.02, top))  # shared: small fractions stay visible
    figlib.percent_axis(axes[0].yaxis, top)
    figlib.bottom_labels(axes, 4, "epoch")
    for i, ax in enumerate(axes):
        if i % 4 == 0:
            ax.set_ylabel("units")
    handles = [Line2D([], [], color=palette[layer], lw=1.5, label=layer) for layer in layers]
    handles += [Line2D([], [], color="0.3", ls=ls, lw=1.3, label=name) for m, (name, ls) in METRICS.items()
                if m in set(mean["metric"])]
    fig.legend(handles=handles, loc="upper left", ncol=len(handles), frameon=False, bbox_to_anchor=(0.0, 0.965))
    fig.suptitle(f"Dead / dormant / saturated units per hidden layer, {args.dataset} / {args.model} "
                 f"(% of the layer's units, mean across seeds)",
                 fontsize=9, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    figlib.save(fig, args.out, __file__, f"Dead units ({args.dataset}/{args.model})")


if __name__ == "__main__":
    main()
