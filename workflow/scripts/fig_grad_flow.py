"""Figure 5: gradient flow: per-layer gradient norm over training, one heatmap per activation.

Rows = weight layers from input (top) to output (bottom), columns = the recorded optimizer steps,
colour = log10 of the L2 norm of the layer's weight gradient, mean across seeds; one colour scale
for every panel, so activations compare directly.
"""
from __future__ import annotations

import figlib
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize


def layer_key(name: str):
    """fc1, fc2, ..., conv1, ..., out: input to output."""
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name == "out", int(digits) if digits else 0, name)


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0], experiment=True)
    p.add_argument("--curves", required=True)
    p.add_argument("--metric", default="grad_norm")
    args = p.parse_args(argv)
    figlib.setup()
    df = figlib.subset(pd.read_parquet(args.curves), args.dataset, args.model, args.curves)
    df = df[(df["metric"] == args.metric) & ~df["layer"].astype(str).str.contains("/")]
    if df.empty:
        raise SystemExit(f"error: {args.curves} has no {args.metric} rows for {args.dataset}/{args.model}")
    mean = df.groupby(["activation", "layer", "step"], as_index=False)["value"].mean()
    mean["log10"] = np.log10(mean["value"].clip(lower=1e-12))
    acts = figlib.ordered(mean["activation"].unique(), args.activations)
    layers = sorted(mean["layer"].unique(), key=layer_key)
    lo, hi = np.nanpercentile(mean["log10"], [1, 99])
    norm = Normalize(vmin=lo, vmax=hi)

    fig, axes = figlib.panel_grid(len(acts), ncols=4, width=2.4, height=0.35 * len(layers) + 1.0,
                                  sharex=True, sharey=True)
    for ax, act in zip(axes, acts):
        grid = mean[mean["activation"] == act].pivot(index="layer", columns="step", values="log10")
        grid = grid.reindex(index=layers)
        steps = grid.columns.to_numpy(dtype=float)
        # cell edges halfway between recorded steps, so irregular spacing is drawn to scale
        mids = (steps[:-1] + steps[1:]) / 2 if len(steps) > 1 else np.array([])
        edges = np.concatenate([[steps[0] - 0.5], mids, [steps[-1] + 0.5]])
        mesh = ax.pcolormesh(edges, np.arange(len(layers) + 1), grid.to_numpy(), cmap="magma", norm=norm,
                             shading="flat", rasterized=True)
        ax.set_title(figlib.label(act))
        ax.set_yticks(np.arange(len(layers)) + 0.5, layers)
        ax.set_ylim(len(layers), 0)
    figlib.bottom_labels(axes, 4, "optimizer step")
    fig.suptitle(f"Gradient flow, {args.dataset} / {args.model}: log10 ||dL/dW|| per layer (mean across seeds)",
                 fontsize=9, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 0.92, 0.96))
    cax = fig.add_axes((0.935, 0.15, 0.015, 0.7))
    fig.colorbar(mesh, cax=cax, label="log10 gradient norm")
    figlib.save(fig, args.out, __file__, f"Gradient flow ({args.dataset}/{args.model})")


if __name__ == "__main__":
    main()
