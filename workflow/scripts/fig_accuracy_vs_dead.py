"""Figure 7: test accuracy against the final no-gradient and low-variance fraction, one point per run.

Left: the no-gradient fraction of all hidden units after training (|f'(z)| <= 1% of the
activation's peak slope on every probe input: dead ReLU units and saturated tanh/sigmoid units
alike, so every activation can be non-zero; the classic dead fraction is 0 by construction for all
but ReLU); right: the low-variance fraction (units whose output is nearly constant). Colour and
marker = activation; one point per (activation, seed); accuracy in %.
"""

from __future__ import annotations

import figlib
import matplotlib.pyplot as plt
import pandas as pd

# What the pipeline needs to know (workflow/rules/figures.smk reads it with ast.literal_eval, without
# importing this script; docs/extending.md): caption: workflow/report/accuracy_vs_dead.rst
FIGURE = {
    "number": 7,
    "title": "accuracy vs dead units",
    "scope": "experiment",
    "inputs": {"summary": "summary.parquet"},
}

PANELS = (
    ("final_no_gradient_fraction", "units passing no gradient after training"),
    ("final_low_variance_fraction", "low-variance units after training"),
)


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0], experiment=True)
    p.add_argument("--summary", required=True)
    args = figlib.parse(p, argv)
    figlib.setup()
    runs = figlib.subset(pd.read_parquet(args.summary), args.experiment, args.summary)
    acts = figlib.ordered(runs["activation"].unique(), args.activations)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4), sharey=True)
    for ax, (column, xlabel) in zip(axes, PANELS):
        if column not in runs or runs[column].isna().all():
            ax.text(0.5, 0.5, f"no {column} in the runs", ha="center", va="center", transform=ax.transAxes)
            continue
        for i, act in enumerate(acts):
            sub = runs[runs["activation"] == act]
            ax.scatter(
                sub[column],
                sub["test_acc"],
                s=22,
                color=figlib.color(act),
                alpha=0.8,
                marker=figlib.marker(i),
                lw=0.3,
                edgecolor="white",
                label=figlib.label(act),
            )
        ax.set_xlabel(xlabel)
        zero = int((runs[column] == 0).sum())
        if zero:  # points stacked at 0% hide each other: say how many there are
            ax.text(
                0.98,
                0.02,
                f"{zero} of {int(runs[column].notna().sum())} runs at 0%",
                ha="right",
                va="bottom",
                transform=ax.transAxes,
                fontsize=7,
                color="0.3",
            )
        top = max(float(runs[column].max()), 0.01)
        ax.set_xlim(-0.04 * top, top * 1.08)  # a run at 0% is drawn inside the panel
        figlib.percent_axis(ax.xaxis, top)
        ax.grid(True, color="0.92", lw=0.6)
    axes[0].set_ylabel("test accuracy")
    acc = runs["test_acc"].dropna()
    figlib.percent_axis(axes[0].yaxis, float(acc.max() - acc.min()) if len(acc) else 1.0)
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(
        f"Test accuracy vs the final fraction of units passing no gradient / carrying no information, "
        f"{args.label} (one point per run)",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    fig.tight_layout()
    figlib.save(
        fig,
        args.out,
        __file__,
        f"Accuracy vs units without gradient ({args.label})",
        inputs=[args.summary],
    )


if __name__ == "__main__":
    main()
