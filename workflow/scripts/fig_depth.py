"""Figure 6: depth study: probability that a freshly initialised deep narrow ReLU MLP is born dead.

One panel per width; x = depth (hidden layers, log scale), y = the percentage of random
initialisations whose network is a constant function of its input (results/depth/born_dead.csv,
python -m actlab.depth), with its 95% Wilson interval as a band: He init and randomized asymmetric
init (RAI, Lu et al. 2019) in two colours. Grey band: the theoretical lower and upper bounds for
bias-free ReLU networks with He init (derived in actlab.borndead and the article's appendix); black
dashed line: the exact probability 1 - 2^-(L-1) at width 1. The controls (activations whose
derivative never vanishes, e.g. Leaky ReLU) are drawn as thin dark grey dotted lines: they stay at 0.
"""

from __future__ import annotations

import figlib
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

# What the pipeline needs to know (workflow/rules/figures.smk reads it with ast.literal_eval, without
# importing this script; docs/extending.md): caption: workflow/report/depth.rst
FIGURE = {
    "number": 6,
    "title": "depth study",
    "scope": "global",
    "inputs": {"born_dead": "depth/born_dead.csv"},
}

INITS = {"he": ("He init", "#1b4f8a", "o"), "rai": ("RAI", "#d1620a", "s")}
BAND = "0.82"  # the theory band: neutral grey, not a data colour
CONTROL = "0.3"  # the controls: a dark grey dotted line (Leaky ReLU's registry blue would read as He's)


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0])
    p.add_argument("--born-dead", required=True)
    args = figlib.parse(p, argv)
    figlib.setup()
    df = pd.read_csv(args.born_dead)
    if df.empty:
        raise SystemExit(f"error: {args.born_dead} is empty")
    if "role" not in df:  # tables written before controls existed: every activation but ReLU is a control
        df["role"] = np.where(df["activation"] == "relu", "study", "control")
    study, controls = df[df["role"] == "study"], df[df["role"] == "control"]
    if study.empty:
        raise SystemExit(f"error: {args.born_dead} has no studied activation (role 'study')")
    studied = figlib.ordered(study["activation"].unique(), figlib.activations.NAMES)
    widths = sorted(df["width"].unique())
    depths = sorted(df["depth"].unique())
    ncols = min(3, len(widths))
    fig, axes = figlib.panel_grid(len(widths), ncols=ncols, width=2.6, height=2.1, sharex=True, sharey=True)
    for ax, width in zip(axes, widths):
        he = study[(study["width"] == width) & (study["init"] == "he")].sort_values("depth")
        theory = he.dropna(subset=["theory_low", "theory_high"]).drop_duplicates("depth")
        if len(theory):
            ax.fill_between(theory["depth"], theory["theory_low"], theory["theory_high"], color=BAND, lw=0, zorder=0)
        exact = he.dropna(subset=["theory_exact"]).drop_duplicates("depth")
        if len(exact):
            ax.plot(exact["depth"], exact["theory_exact"], color="black", ls="--", lw=1.0, zorder=3)
        for (act, init), g in study[study["width"] == width].groupby(["activation", "init"], sort=False):
            g = g.sort_values("depth")
            name, c, marker = INITS.get(init, (init, "0.4", "^"))
            ls = "-" if act == studied[0] else "-."
            ax.fill_between(g["depth"], g["ci_low"], g["ci_high"], color=c, alpha=0.25, lw=0, zorder=1)
            ax.plot(g["depth"], g["p_born_dead"], color=c, ls=ls, marker=marker, ms=3, lw=1.2, zorder=2)
        for _act, g in controls[controls["width"] == width].groupby("activation", sort=False):
            top = g.groupby("depth")["p_born_dead"].max()  # the larger of the inits: 0 when never born dead
            ax.plot(top.index, top.values, color=CONTROL, ls=":", lw=1.3, zorder=2)
        ax.set_title(f"width {int(width)}")
        ax.set_xscale("log")
        ax.set_xticks(depths, [str(int(d)) for d in depths])
        ax.minorticks_off()
        ax.set_ylim(-0.03, 1.03)
        figlib.percent_axis(ax.yaxis, 1.0)
        ax.grid(True, color="0.93", lw=0.6)
    figlib.bottom_labels(axes, ncols, "depth (hidden layers)")
    for i, ax in enumerate(axes):
        if i % ncols == 0:
            ax.set_ylabel("born dead (%)")
    rel = " and ".join(figlib.label(a) for a in studied)
    handles = [
        Line2D([], [], color=c, marker=m, ms=3, lw=1.2, label=f"{rel}, {name}")
        for init, (name, c, m) in INITS.items()
        if init in set(study["init"])
    ]
    handles.append(Patch(color=INITS["he"][1], alpha=0.25, lw=0, label="95% Wilson interval"))
    if study["theory_low"].notna().any():
        handles.append(Patch(color=BAND, lw=0, label="theory bounds (He, bias-free)"))
    if study["theory_exact"].notna().any():
        handles.append(Line2D([], [], color="black", ls="--", lw=1.0, label=r"exact at width 1: $1 - 2^{-(L-1)}$"))
    for act in figlib.ordered(controls["activation"].unique(), figlib.activations.NAMES):
        handles.append(
            Line2D(
                [],
                [],
                color=CONTROL,
                ls=":",
                lw=1.3,
                label=f"{figlib.label(act)} (control, {int(controls['trials'].max()):,} inits)",
            )
        )
    if len(axes) < ncols * int(np.ceil(len(axes) / ncols)):  # an empty slot in the last row: the legend goes there
        fig.legend(handles=handles, loc="center", bbox_to_anchor=(1 - 0.5 / ncols, 0.25), frameon=False)
    else:
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    figlib.save(fig, args.out, __file__, "Depth study: born-dead probability")


if __name__ == "__main__":
    main()
