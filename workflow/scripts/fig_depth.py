"""Figure 6: depth study: probability that a freshly initialised deep narrow MLP is born dead.

One panel per activation; x = depth (hidden layers), y = fraction of random initialisations whose
network is a constant function of its input (results/depth/born_dead.csv, python -m actlab.depth);
colour = width, solid = He init, dashed = randomized asymmetric init (RAI, Lu et al. 2019); bands =
the 95% Wilson intervals the study reports; thin dotted lines = the theoretical lower and upper
bounds for ReLU with He init (bias-free; derived in actlab.depth), where the table has them.
"""
from __future__ import annotations

import figlib
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

STYLES = {"he": ("He", "-", "o"), "rai": ("RAI", "--", "s")}


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0])
    p.add_argument("--born-dead", required=True)
    args = p.parse_args(argv)
    figlib.setup()
    df = pd.read_csv(args.born_dead)
    if df.empty:
        raise SystemExit(f"error: {args.born_dead} is empty")
    acts = figlib.ordered(df["activation"].unique(), figlib.activations.NAMES)
    widths = sorted(df["width"].unique())
    palette = dict(zip(widths, sns.color_palette("viridis_r", len(widths) + 1)[1:] if len(widths) > 1
                       else [(0.2, 0.3, 0.6)]))
    fig, axes = figlib.panel_grid(len(acts), ncols=min(4, len(acts)), width=3.2, height=2.5, sharex=True,
                                  sharey=True)
    for ax, act in zip(axes, acts):
        sub = df[df["activation"] == act]
        for (init, width), g in sub.groupby(["init", "width"], sort=True):
            g = g.sort_values("depth")
            name, ls, marker = STYLES.get(init, (init, ":", "^"))
            c = palette[width]
            ax.plot(g["depth"], g["p_born_dead"], color=c, ls=ls, marker=marker, ms=3, lw=1.3)
            ax.fill_between(g["depth"], g["ci_low"], g["ci_high"], color=c, alpha=0.15, lw=0)
            if init == "he" and "theory_low" in g and g["theory_low"].notna().all():
                for bound in ("theory_low", "theory_high"):
                    ax.plot(g["depth"], g[bound], color=c, ls=":", lw=0.9)
        ax.set_title(figlib.label(act))
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, color="0.92", lw=0.6)
        depths = sorted(df["depth"].unique())
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.minorticks_off()
    figlib.bottom_labels(axes, min(4, len(acts)), "depth (hidden layers)")
    axes[0].set_ylabel("P(born dead)")
    handles = [Line2D([], [], color=palette[w], lw=1.5, label=f"width {w}") for w in widths]
    handles += [Line2D([], [], color="0.3", ls=ls, marker=m, ms=3, label=f"{name} init")
                for init, (name, ls, m) in STYLES.items() if init in set(df["init"])]
    if "theory_low" in df and df["theory_low"].notna().any():
        handles.append(Line2D([], [], color="0.3", ls=":", lw=0.9, label="theory bounds (He)"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    trials = int(df["trials"].max())
    fig.suptitle(f"Born dead at initialisation: constant-output MLPs on a 1-D input ({trials} inits per point, "
                 f"95% Wilson bands)", fontsize=9, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    figlib.save(fig, args.out, __file__, "Depth study: born-dead probability")


if __name__ == "__main__":
    main()
