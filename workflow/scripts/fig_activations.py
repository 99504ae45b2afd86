"""Figure 1: every activation f(x) and its derivative f'(x), one small panel each.

f' comes from autograd through the very module the models use (actlab.activations.build), with
the parameters of conf/activation/<name>.yaml, so the figure shows what was trained. Where f' jumps
(the registry's Spec.kinks: ReLU's, Leaky ReLU's, PReLU's and SELU's 0) the derivative's line is
broken (a NaN at the kink): a line drawn through the jump would be a vertical segment that is no
value of f'.
"""

from __future__ import annotations

import figlib
import numpy as np
import torch
import yaml

from actlab import activations

# What the pipeline needs to know (workflow/rules/figures.smk reads it with ast.literal_eval, without
# importing this script; docs/extending.md): caption: workflow/report/activations.rst
FIGURE = {
    "number": 1,
    "title": "activations",
    "scope": "global",
    "inputs": {},
    "args": ["activations"],
}


def curves(name: str, x: torch.Tensor):
    with open(figlib.REPO / "conf" / "activation" / f"{name}.yaml") as f:
        params = {k: v for k, v in (yaml.safe_load(f) or {}).items() if k != "name"}
    module = activations.build(name, num_features=None, **params).double()
    x = x.clone().requires_grad_(True)
    y = module(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return y.detach().numpy(), dy.numpy()


def break_at_kinks(x: np.ndarray, dy: np.ndarray, kinks) -> tuple[np.ndarray, np.ndarray]:
    """(x, f'(x)) with a NaN point inserted at each kink inside the range: the line stops there."""
    x, dy = np.asarray(x, dtype=float), np.asarray(dy, dtype=float)
    for k in sorted(kinks):
        if x[0] < k < x[-1]:
            keep = x != k  # f' at the kink itself is a subgradient convention (ReLU'(0) = 0), not drawn
            x, dy = x[keep], dy[keep]
            i = int(np.searchsorted(x, k))
            x, dy = np.insert(x, i, k), np.insert(dy, i, np.nan)
    return x, dy


def kinks(name: str) -> tuple[float, ...]:
    spec = activations.REGISTRY.get(name)
    return spec.kinks if spec is not None else ()


def main(argv=None) -> None:
    p = figlib.parser(__doc__.split("\n")[0])
    p.add_argument("--activations", nargs="+", required=True)
    args = figlib.parse(p, argv)
    figlib.setup()
    x = torch.linspace(-4, 4, 801, dtype=torch.float64)
    fig, axes = figlib.panel_grid(len(args.activations), ncols=4, width=2.2, height=1.8, sharex=True, sharey=True)
    for ax, name in zip(axes, args.activations):
        y, dy = curves(name, x)
        c = figlib.color(name)
        ax.axhline(0, color="0.85", lw=0.6, zorder=0)
        ax.axvline(0, color="0.85", lw=0.6, zorder=0)
        ax.plot(x, y, color=c, lw=1.6, label="f(x)")
        ax.plot(*break_at_kinks(x.numpy(), dy, kinks(name)), color=c, lw=1.2, ls="--", label="f'(x)")
        ax.set_title(figlib.label(name))
        ax.set_xlim(-4, 4)
        ax.set_ylim(-2, 4)
    figlib.bottom_labels(axes, 4, "x")
    axes[0].legend(loc="upper left", frameon=False)
    fig.suptitle("Activation functions (solid) and their derivatives (dashed, autograd)", fontsize=10)
    fig.tight_layout()
    figlib.save(
        fig,
        args.out,
        __file__,
        "Activation functions and derivatives",
        inputs=[f"conf/activation/{name}.yaml" for name in args.activations],
    )


if __name__ == "__main__":
    main()
