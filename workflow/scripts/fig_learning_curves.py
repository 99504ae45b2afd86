"""Figure 2: learning curves per activation: mean across seeds with a 95% Student-t band.

One panel per activation: validation error (solid) and training error (dashed), error = 100% -
accuracy, in %, on a linear axis that starts at 0; the baseline's mean validation error is a thin
grey reference in every other panel. Panel titles give the final mean validation accuracy in %.
For a regression task (no accuracy) the losses are shown instead.

Why linear, not log: the training error of these models reaches exactly 0, which a log axis cannot
show (it used to be clipped to a floor of 0.1%, where a vanished error looked like a small one). On
a linear axis 0 is 0. The axis is cut above at a few times the largest final validation error, so
the end of training (what the panels compare) fills the panel; the first epochs, above the cut,
leave through the top edge, and the cut is printed in the figure.
"""

from __future__ import annotations

import figlib
import pandas as pd

from actlab.stats import t_interval

# What the pipeline needs to know (workflow/rules/figures.smk reads it with ast.literal_eval, without
# importing this script; docs/extending.md): caption: workflow/report/learning_curves.rst
FIGURE = {
    "number": 2,
    "title": "learning curves",
    "scope": "experiment",
    "inputs": {"curves": "curves/metrics.parquet"},
    "args": ["baseline"],
}

TOP = 4.0  # the y axis ends at TOP x the largest final mean validation error (at most 100%)


def band(df: pd.DataFrame, column: str, error: bool) -> pd.DataFrame:
    """Per epoch: mean and 95% t-interval of `column` (or of the error 1 - column) across seeds; an
    error's interval is clipped to [0, 1], where errors live (a t-interval can reach below 0)."""
    rows = [
        {"epoch": e, **t_interval(1 - g[column] if error else g[column])} for e, g in df.groupby("epoch", sort=True)
    ]
    out = pd.DataFrame(rows)
    if error:
        cols = ["mean", "ci_low", "ci_high"]
        out[cols] = out[cols].clip(lower=0.0, upper=1.0)
    return out


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0], experiment=True)
    p.add_argument("--curves", required=True)
    p.add_argument("--baseline", default="relu")
    args = figlib.parse(p, argv)
    figlib.setup()
    df = figlib.subset(pd.read_parquet(args.curves), args.experiment, args.curves)
    acts = figlib.ordered(df["activation"].unique(), args.activations)
    has_acc = "val_acc" in df and df["val_acc"].notna().any()
    solid, dashed = ("val_acc", "train_acc") if has_acc else ("val_loss", "train_loss")
    names = {
        "val_acc": "validation error",
        "train_acc": "training error",
        "val_loss": "validation loss",
        "train_loss": "training loss",
    }

    fig, axes = figlib.panel_grid(len(acts), ncols=4, width=2.3, height=1.8, sharex=True, sharey=True)
    base = band(df[df["activation"] == args.baseline], solid, has_acc) if args.baseline in acts else None
    for ax, act in zip(axes, acts):
        sub = df[df["activation"] == act]
        c = figlib.color(act)
        if base is not None and act != args.baseline:
            ax.plot(base["epoch"], base["mean"], color="0.6", lw=0.9, label=f"{figlib.label(args.baseline)} (val.)")
        for column, ls in ((solid, "-"), (dashed, "--")):
            b = band(sub, column, has_acc)
            ax.plot(b["epoch"], b["mean"], color=c, lw=1.4, ls=ls, label=names[column])
            ax.fill_between(b["epoch"], b["ci_low"], b["ci_high"], color=c, alpha=0.25, lw=0)
        last = sub[sub["epoch"] == sub["epoch"].max()][solid].mean()
        n = int(sub["seed"].nunique())
        ax.set_title(
            f"{figlib.label(act)}: {100 * last:.1f}% (n={n})" if has_acc else f"{figlib.label(act)}: {last:.3g} (n={n})"
        )
        ax.grid(True, which="major", color="0.9", lw=0.6)
    if has_acc:
        final = df[df["epoch"] == df.groupby(["activation", "seed"])["epoch"].transform("max")]
        worst = float((1 - final.groupby("activation")[solid].mean()).max())
        top = min(1.0, max(TOP * worst, 0.01))
        axes[0].set_ylim(0, top)
        figlib.percent_axis(axes[0].yaxis, top)
    else:
        axes[0].set_ylim(bottom=0)
    figlib.bottom_labels(axes, 4, "epoch")
    for i, ax in enumerate(axes):
        if i % 4 == 0:
            ax.set_ylabel("error (100% − accuracy)" if has_acc else "loss")
    handles, labels = [], []
    for ax in axes[:2]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper left", ncol=3, frameon=False, bbox_to_anchor=(0.0, 0.945))
    final_name = "final mean validation accuracy" if has_acc else "final mean validation loss"
    cut = f"; y axis cut at {100 * top:.0f}%: earlier epochs above it" if has_acc and top < 1 else ""
    fig.suptitle(
        f"Learning curves, {args.label}: mean and 95% t-band across seeds\n(titles: {final_name}; n = seeds{cut})",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.91))
    figlib.save(
        fig,
        args.out,
        __file__,
        f"Learning curves ({args.label})",
        inputs=[args.curves],
    )


if __name__ == "__main__":
    main()
