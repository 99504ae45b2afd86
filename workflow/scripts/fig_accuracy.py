"""Figure 3: final test accuracy per activation: seeds as dots, mean with its 95% t-interval.

Accuracy in %, differences to the baseline in percentage points (pp), as in the article's tables.
Activations are sorted by mean accuracy; the baseline's mean is a vertical line. Stars: the
paired (by seed) exact sign-flip test against the baseline, Holm-corrected (results/stats/vs_relu.csv):
* p < 0.05, ** p < 0.01, *** p < 0.001.
"""

from __future__ import annotations

import figlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# What the pipeline needs to know (workflow/rules/figures.smk reads it with ast.literal_eval, without
# importing this script; docs/extending.md): caption: workflow/report/accuracy.rst
FIGURE = {
    "number": 3,
    "title": "accuracy",
    "scope": "experiment",
    "inputs": {"summary": "summary.parquet", "accuracy": "stats/accuracy.csv", "vs_baseline": "stats/vs_relu.csv"},
    "args": ["baseline"],
}


def stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def fmt_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0], experiment=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--accuracy", required=True, help="results/stats/accuracy.csv")
    p.add_argument("--vs-baseline", required=True, help="results/stats/vs_relu.csv")
    p.add_argument("--baseline", default="relu")
    args = figlib.parse(p, argv)
    figlib.setup()
    runs = figlib.subset(pd.read_parquet(args.summary), args.experiment, args.summary)
    acc = figlib.subset(pd.read_csv(args.accuracy), args.experiment, args.accuracy)
    acc = acc[acc["metric"] == "test_acc"].set_index("activation")
    vs = pd.read_csv(args.vs_baseline)
    vs = vs[vs["experiment"] == args.experiment].set_index("activation")

    acts = sorted(figlib.ordered(acc.index, args.activations), key=lambda a: -acc.loc[a, "mean"])
    fig, ax = plt.subplots(figsize=(6.0, 0.36 * len(acts) + 1.1))
    rng = np.random.default_rng(0)  # jitter only: fixed so the figure is reproducible
    for y, act in enumerate(acts):
        c = figlib.color(act)
        seeds = runs[runs["activation"] == act]["test_acc"].dropna()
        ax.scatter(seeds, y + rng.uniform(-0.18, 0.18, len(seeds)), s=9, color=c, alpha=0.55, lw=0, zorder=2)
        row = acc.loc[act]
        ax.errorbar(
            row["mean"],
            y,
            xerr=[[row["mean"] - row["ci_low"]], [row["ci_high"] - row["mean"]]],
            fmt="o",
            ms=5,
            color=c,
            ecolor=c,
            elinewidth=1.6,
            capsize=3,
            zorder=3,
        )
        if act in vs.index:
            d = vs.loc[act]
            mark = stars(d["p_holm"])
            if mark:
                ax.annotate(mark, (row["ci_high"], y), xytext=(4, -3), textcoords="offset points", fontsize=8)
            ax.annotate(
                # the article's table: one decimal, a typographic minus
                f"{100 * d['mean_diff']:+.1f}".replace("-", "\u2212") + f"  {fmt_p(d['p_holm'])}",
                (1.02, y),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=7,
                color="0.25",
            )
    ax.annotate(
        f"− {figlib.label(args.baseline)}, pp  Holm p",
        (1.02, -0.9),
        xycoords=("axes fraction", "data"),
        va="center",
        fontsize=7,
        color="0.25",
        annotation_clip=False,
    )
    if args.baseline in acc.index:
        ax.axvline(acc.loc[args.baseline, "mean"], color="0.5", lw=0.8, ls=":", zorder=1)
    ax.set_yticks(range(len(acts)), [figlib.label(a) for a in acts])
    ax.set_ylim(len(acts) - 0.5, -1.2)  # top to bottom; one spare row for the column header
    ax.set_xlabel("test accuracy")
    figlib.percent_axis(ax.xaxis, float(np.diff(ax.get_xlim())[0]))  # decimals by the range shown
    ax.grid(True, axis="x", color="0.92", lw=0.6)
    n = int(acc["n"].max())
    ax.set_title(
        f"Test accuracy, {args.label}: mean, 95% t-interval, {n} seeds (dots)\n"
        f"dotted: {figlib.label(args.baseline)} mean; stars: paired sign-flip test vs "
        f"{figlib.label(args.baseline)}, Holm-corrected",
        fontsize=8,
        loc="left",
    )
    fig.tight_layout()
    figlib.save(
        fig,
        args.out,
        __file__,
        f"Test accuracy ({args.label})",
        inputs=[args.summary, args.accuracy, args.vs_baseline],
    )


if __name__ == "__main__":
    main()
