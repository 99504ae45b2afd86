"""Figure 5: gradient flow: the RMS gradient of each weight layer over training, per activation.

Columns = weight layers from the input (hidden layer 1) to the output layer; one line per activation;
y = grad_rms = ||dL/dW||_2 / sqrt(numel), the typical size of one weight's gradient, on a log axis,
so layers of different sizes compare directly (grad_norm grows with the square root of the number
of weights; actlab.probes). Across seeds: the geometric mean (the mean of log10), the natural
average of a quantity drawn on a log axis. Per-step gradients are noisy: each line is smoothed with
a running median over `--smooth` recorded steps (1 = none), stated in the figure.
"""

from __future__ import annotations

import figlib
import numpy as np
import pandas as pd

# What the pipeline needs to know (workflow/rules/figures.smk reads it with ast.literal_eval, without
# importing this script; docs/extending.md): caption: workflow/report/grad_flow.rst
FIGURE = {
    "number": 5,
    "title": "gradient flow",
    "scope": "experiment",
    "inputs": {"curves": "curves/grad_flow.parquet"},
}


def layer_curves(df: pd.DataFrame, metric: str, smooth: int) -> pd.DataFrame:
    """Per (activation, layer, step): log10 of `metric`, mean across seeds, then a centred running
    median over `smooth` recorded steps. Whole-model ratio rows (layer "fc1/out") are left out."""
    df = df[(df["metric"] == metric) & ~df["layer"].astype(str).str.contains("/")].copy()
    df["log10"] = np.log10(df["value"].astype(float).clip(lower=1e-30))
    mean = df.groupby(["activation", "layer", "step"], as_index=False)["log10"].mean()
    mean = mean.sort_values(["activation", "layer", "step"])
    mean["smooth"] = mean.groupby(["activation", "layer"])["log10"].transform(
        lambda s: s.rolling(smooth, center=True, min_periods=1).median()
    )
    return mean


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0], experiment=True)
    p.add_argument("--curves", required=True)
    p.add_argument("--metric", default="grad_rms", help="grad_rms (default) or grad_norm")
    p.add_argument("--smooth", type=int, default=5, help="running median over this many recorded steps")
    args = figlib.parse(p, argv)
    if args.smooth < 1:
        figlib.fail(f"error: --smooth must be >= 1, got {args.smooth}")
    figlib.setup()
    df = figlib.subset(pd.read_parquet(args.curves), args.experiment, args.curves)
    mean = layer_curves(df, args.metric, args.smooth)
    if mean.empty:
        figlib.fail(f"error: {args.curves} has no {args.metric} rows for experiment {args.experiment}")
    acts = figlib.ordered(mean["activation"].unique(), args.activations)
    layers = sorted(mean["layer"].unique(), key=figlib.names.layer_order)
    n_steps = mean["step"].nunique()
    every = max(1, n_steps // 6)  # about 6 markers per line, activation i's shifted by i/len(acts) of a gap

    fig, axes = figlib.plt.subplots(
        1, len(layers), figsize=(2.6 * len(layers) + 1.6, 2.9), sharex=True, sharey=True, squeeze=False
    )
    for ax, layer in zip(axes[0], layers):
        for i, act in enumerate(acts):
            g = mean[(mean["activation"] == act) & (mean["layer"] == layer)]
            ax.plot(
                g["step"],
                10 ** g["smooth"],
                color=figlib.color(act),
                lw=1.1,
                alpha=0.85,
                marker=figlib.marker(i),
                ms=3.2,
                markevery=(i * every // len(acts), every),
                label=figlib.label(act),
            )
        ax.set_yscale("log")
        ax.set_title(figlib.layer(layer))
        ax.set_xlabel("optimiser step")
        ax.grid(True, which="major", color="0.92", lw=0.6)
    name = "RMS gradient per weight" if args.metric == "grad_rms" else args.metric
    axes[0][0].set_ylabel(f"{name}\n(log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    smooth = f"running median over {args.smooth} recorded steps" if args.smooth > 1 else "not smoothed"
    fig.suptitle(
        f"Gradient size per layer over training, {args.label}: geometric mean across seeds, {smooth}",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    figlib.save(fig, args.out, __file__, f"Gradient flow ({args.label})", inputs=[args.curves])


if __name__ == "__main__":
    main()
