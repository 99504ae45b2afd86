"""Shared style and saving for the figure scripts (workflow/scripts/fig_*.py).

Every figure: seaborn's "ticks" style, one fixed colour per activation (the same in every figure),
the article's names for activations, datasets, models and layers (actlab.names), PNG (150 dpi) and
SVG written atomically. Provenance (the script, the git commit, the input files) goes into each
file's metadata and into the caption (workflow/report/*.rst, paper/results.md), never into the
picture: `python -c "from PIL import Image; print(Image.open('x.png').text)"` shows it.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from cycler import cycler  # noqa: E402

from actlab import activations, names  # noqa: E402,F401  (names: also for the scripts, figlib.names)

REPO = Path(__file__).resolve().parents[2]


def fail(message: str):
    """Bad input: one line `error: ...` on stderr, exit code 2 (argparse's), nothing written."""
    print(message if message.startswith("error: ") else f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def color(name: str) -> str:
    """The activation's colour from the registry (actlab.activations); a stable grey otherwise."""
    spec = activations.REGISTRY.get(name)
    if spec is not None and spec.color:
        return spec.color
    return str(0.3 + 0.4 * (zlib.crc32(name.encode()) % 7) / 6)  # stable across processes


def label(name: str) -> str:
    """The activation's display name from the registry."""
    return names.activation(name)


def experiment(dataset: str, model: str) -> str:
    """The article's name for one experiment: 'scikit-learn digits (8x8) MLP'."""
    return names.experiment(dataset, model)


def layer(name: str) -> str:
    """act1 / fc1 -> 'hidden layer 1', out -> 'output layer' (actlab.names.layer)."""
    return names.layer(name)


# Lines that must stay visible where they coincide (a dead fraction of 0 for several activations):
# each activation gets its own marker, and is drawn with a little transparency.
MARKERS = "oDsv^<>phXPd8*"


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


# seaborn's theme, sns.set_theme(context="paper", style="ticks", font_scale=1.0) with seaborn 0.13: the
# rcParams it sets and the colour codes it remaps ("b", "k", ... = its "deep" palette), written out
# because importing seaborn imports scipy.stats, ~2 s of every figure process's start-up for this one
# call. tests/test_figures.py checks they equal what seaborn sets (but image.cmap: seaborn's "rocket"
# exists only once seaborn is imported, and no figure draws with a colormap).
SEABORN_DEEP = [
    (0.2980392156862745, 0.4470588235294118, 0.6901960784313725),
    (0.8666666666666667, 0.5176470588235295, 0.3215686274509804),
    (0.3333333333333333, 0.6588235294117647, 0.40784313725490196),
    (0.7686274509803922, 0.3058823529411765, 0.3215686274509804),
    (0.5058823529411764, 0.4470588235294118, 0.7019607843137254),
    (0.5764705882352941, 0.47058823529411764, 0.3764705882352941),
    (0.8549019607843137, 0.5450980392156862, 0.7647058823529411),
    (0.5490196078431373, 0.5490196078431373, 0.5490196078431373),
    (0.8, 0.7254901960784313, 0.4549019607843137),
    (0.39215686274509803, 0.7098039215686275, 0.803921568627451),
]
SEABORN_RC = {
    "axes.axisbelow": True,
    "axes.edgecolor": ".15",
    "axes.labelcolor": ".15",
    "axes.labelsize": 9.600000000000001,
    "axes.linewidth": 1.0,
    "axes.titlesize": 9.600000000000001,
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "font.size": 9.600000000000001,
    "grid.color": ".8",
    "legend.fontsize": 8.8,
    "legend.title_fontsize": 9.600000000000001,
    "lines.linewidth": 1.2000000000000002,
    "lines.markersize": 4.800000000000001,
    "lines.solid_capstyle": "round",
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "patch.linewidth": 0.8,
    "text.color": ".15",
    "xtick.color": ".15",
    "xtick.labelsize": 8.8,
    "xtick.major.size": 4.800000000000001,
    "xtick.major.width": 1.0,
    "xtick.minor.size": 3.2,
    "xtick.minor.width": 0.8,
    "ytick.color": ".15",
    "ytick.labelsize": 8.8,
    "ytick.major.size": 4.800000000000001,
    "ytick.major.width": 1.0,
    "ytick.minor.size": 3.2,
    "ytick.minor.width": 0.8,
    "axes.prop_cycle": cycler(color=SEABORN_DEEP),
}
SEABORN_COLOR_CODES = dict(zip("bgrmyck", [*(SEABORN_DEEP[i] for i in (0, 2, 3, 4, 8, 9)), (0.1, 0.1, 0.1)]))


# on top of seaborn's theme: smaller text, 150 dpi PNGs, SVG ids that do not change from run to run
STYLE = {
    "svg.hashsalt": "actlab",
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.dpi": 100,
    "savefig.dpi": 150,
}


def setup() -> None:
    plt.rcParams.update(SEABORN_RC)
    for code, rgb in SEABORN_COLOR_CODES.items():  # one by one: item assignment clears matplotlib's colour cache
        matplotlib.colors.colorConverter.colors[code] = rgb
    plt.rcParams.update(STYLE)


def parser(description: str, experiment: bool = False, group: bool = False) -> argparse.ArgumentParser:
    """--out; with `experiment` the experiment the figure is about (--experiment, the tables' key;
    --label, the article's name for it) and its activations; with `group` instead every experiment of
    one --dataset and --model (figures across experiments, e.g. across depth)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", nargs="+", required=True, type=Path, help="output files: .png and/or .svg")
    if experiment:
        p.add_argument("--experiment", required=True, help="the experiment's name (the tables' `experiment`)")
        p.add_argument("--label", help="the article's name for it (default: the name)")
    if group:
        p.add_argument("--dataset", required=True)
        p.add_argument("--model", required=True)
    if experiment or group:
        p.add_argument("--activations", nargs="+", required=True)
    return p


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = p.parse_args(argv)
    if getattr(args, "experiment", None) is not None and not args.label:
        args.label = args.experiment
    return args


def panel_grid(n: int, ncols: int = 4, width: float = 2.3, height: float = 1.9, **kw):
    """n small panels on a grid of ncols columns; unused axes removed. Returns (fig, list of axes)."""
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows + 0.4), squeeze=False, **kw)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def bottom_labels(axes, ncols: int, xlabel: str) -> None:
    """x label and tick labels on every panel with no panel below it (also in a short last row)."""
    n = len(axes)
    for i, ax in enumerate(axes):
        if i + min(ncols, n) >= n:
            ax.set_xlabel(xlabel)
            ax.xaxis.set_tick_params(labelbottom=True)
        else:
            ax.set_xlabel("")


def percent_axis(axis, vmax: float) -> None:
    """Percent tick labels with as many decimals as the range needs (0.4% max -> 0.10%, 0.20%, ...)."""
    from matplotlib.ticker import PercentFormatter

    decimals = 2 if vmax < 0.01 else 1 if vmax < 0.2 else 0
    axis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def ordered(names, order) -> list[str]:
    """`names` in the sweep's order (`order`), unknown ones last, alphabetically."""
    order = list(order)
    return sorted(set(names), key=lambda a: (order.index(a) if a in order else len(order), a))


def script_name(script: str) -> str:
    path = Path(script).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return path.name


def git_commit() -> str | None:
    """The repository's commit (with '-dirty' if the work tree differs), or None outside git."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip()


def provenance(script: str, inputs=()) -> str:
    """'made by workflow/scripts/fig_x.py at commit abc123 from results/...': for the metadata."""
    text = f"made by {script_name(script)}"
    commit = git_commit()
    if commit:
        text += f" at commit {commit}"
    inputs = [str(i) for i in inputs if i]
    if inputs:
        text += " from " + ", ".join(inputs)
    return text


def save(fig, outs, script: str, title: str, inputs=()) -> None:
    """Each of `outs` (.png/.svg) written atomically, the script, commit and `inputs` in its metadata
    (PNG text chunks Title/Description/Software/Source; SVG Dublin Core Title/Description/Creator/
    Source). Nothing is added to the picture itself: the caption names the script."""
    from actlab import atomic

    outs = [Path(out) for out in outs]
    bad = [str(out) for out in outs if out.suffix.lower() not in (".png", ".svg")]
    if bad:  # checked before anything is written: no PNG without its SVG
        fail(f"error: unsupported figure format: {', '.join(bad)} (use .png or .svg)")
    made_by = provenance(script, inputs)
    for out in outs:
        fmt = out.suffix.lstrip(".").lower()
        if fmt == "png":
            metadata = {
                "Title": title,
                "Description": made_by,
                "Software": f"{script_name(script)}; matplotlib",
                "Source": script_name(script),
            }
        else:
            metadata = {
                "Title": title,
                "Description": made_by,
                "Creator": f"{script_name(script)}; matplotlib",
                "Source": script_name(script),
                "Date": None,
            }
        with atomic.atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt, metadata=metadata, bbox_inches="tight", pad_inches=0.08)
    plt.close(fig)


def subset(df, experiment: str, where: str):
    """Rows of one experiment; an empty result is an error naming what was asked for."""
    out = df[df["experiment"] == experiment]
    if out.empty:
        fail(f"error: {where} has no rows for experiment {experiment}")
    return out


def subset_group(df, dataset: str, model: str, where: str):
    """Rows of every experiment of one dataset and model; an empty result is an error."""
    out = df[(df["dataset"] == dataset) & (df["model"] == model)]
    if out.empty:
        fail(f"error: {where} has no rows for {dataset}/{model}")
    return out
