"""Figure 7: test accuracy against the final dead and dormant fraction, one point per run.

Left: dead fraction (f'(z) = 0 on every probe input) of all hidden units after training; right:
tau-dormant fraction. Colour = activation; one point per (activation, seed).
"""
from __future__ import annotations

import figlib
import matplotlib.pyplot as plt
import pandas as pd

PANELS = (("final_dead_fraction", "dead units after training"),
          ("final_dormant_fraction", "dormant units after training"))


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0], experiment=True)
    p.add_argument("--summary", required=True)
    args = p.parse_args(argv)
    figlib.setup()
    runs = figlib.subset(pd.read_parquet(args.summary), args.dataset, args.model, args.summary)
    acts = figlib.ordered(runs["activation"].unique(), args.activations)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4), sharey=True)
    for ax, (column, xlabel) in zip(axes, PANELS):
        if column not in runs or runs[column].isna().all():
            ax.text(0.5, 0.5, f"no {column} in the runs", ha="center", va="center", transform=ax.transAxes)
            continue
        for i, act in enumerate(acts):
            sub = runs[runs["activation"] == act]
            ax.scatter(sub[column], sub["test_acc"], s=22, color=figlib.color(act), alpha=0.8,
                       marker="oDsv^<>phXPd8"[i % 13], lw=0.3, edgecolor="white", label=figlib.label(act))
        ax.set_xlabel(xlabel)
        figlib.percent_axis(ax.xaxis, float(runs[column].max()))
        ax.grid(True, color="0.92", lw=0.6)
    axes[0].set_ylabel("test accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(f"Test accuracy vs final dead / dormant fraction, {args.dataset} / {args.model} "
                 f"(one point per run)", fontsize=9, x=0.01, ha="left")
    fig.tight_layout()
    figlib.save(fig, args.out, __file__, f"Accuracy vs dead units ({args.dataset}/{args.model})")


if __name__ == "__main__":
    main()
