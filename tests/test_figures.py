"""The figure scripts (workflow/scripts/fig_*.py) on small synthetic tables: provenance in the files'
metadata and not in the picture, the article's names and units, the derivative's line broken at the
registry's kinks, and the across-depth figure with one and with several depths."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from actlab import activations, names

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))
matplotlib.use("Agg")

ACTS = ["relu", "leaky_relu", "tanh"]


def script(name: str):
    return importlib.import_module(name)


@pytest.fixture
def drawn(monkeypatch):
    """Run a script's main() in-process and keep the figure it saved (figlib.save closes it)."""
    import figlib

    figures = []
    original = figlib.plt.close

    def keep(fig=None):
        if fig is not None:
            figures.append(fig)
        else:
            original(fig)

    monkeypatch.setattr(figlib.plt, "close", keep)

    def run(name: str, argv: list[str]):
        script(name).main(argv)
        assert figures, f"{name} saved no figure"
        return figures[-1]

    yield run
    for fig in figures:
        original(fig)


def texts(fig) -> list[str]:
    """Every piece of text drawn in the figure: titles, labels, tick labels, legends, annotations."""
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


# -----------------------------------------------------------------------------
# synthetic results: two hidden layers (or `depths`), ACTS x 2 seeds, a few epochs / steps


def runs_table(depths=(2,)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for depth in depths:
        for a in ACTS:
            for seed in (0, 1):
                rows.append(
                    {
                        "experiment": f"digits_mlp_d{depth}",
                        "dataset": "digits",
                        "model": "mlp",
                        "activation": a,
                        "seed": seed,
                        "depth": depth,
                        "test_acc": 0.95 - 0.01 * depth + 0.005 * rng.standard_normal(),
                        "final_dead_fraction": 0.1 if a == "relu" else 0.0,
                        "final_dormant_fraction": 0.0,
                        "final_no_gradient_fraction": {"relu": 0.1, "leaky_relu": 0.05, "tanh": 0.02}[a],
                        "final_low_variance_fraction": 0.01,
                    }
                )
    return pd.DataFrame(rows)


def dead_table(depths=(2,)) -> pd.DataFrame:
    rows = []
    for depth in depths:
        for a in ACTS:
            for seed in (0, 1):
                for layer in range(1, depth + 1):
                    for epoch in range(4):
                        for metric, value in (
                            ("no_gradient_fraction", 0.0 if a != "relu" else 0.05 * epoch),
                            ("low_variance_fraction", 0.0),
                            ("dead_fraction", 0.0),
                            ("n_units", 32.0),
                        ):
                            rows.append(
                                {
                                    "experiment": f"digits_mlp_d{depth}",
                                    "dataset": "digits",
                                    "model": "mlp",
                                    "activation": a,
                                    "seed": seed,
                                    "depth": depth,
                                    "epoch": epoch,
                                    "layer": f"act{layer}",
                                    "metric": metric,
                                    "value": value,
                                }
                            )
    return pd.DataFrame(rows)


def grad_table(depths=(2,)) -> pd.DataFrame:
    rows = []
    for depth in depths:
        layers = [f"fc{i}" for i in range(1, depth + 1)] + ["out"]
        for a in ACTS:
            for seed in (0, 1):
                for step in (1, 5, 10, 15):
                    for i, layer in enumerate(layers):
                        rows.append(
                            {
                                "experiment": f"digits_mlp_d{depth}",
                                "dataset": "digits",
                                "model": "mlp",
                                "activation": a,
                                "seed": seed,
                                "depth": depth,
                                "step": step,
                                "epoch": 1 + step // 10,
                                "layer": layer,
                                "metric": "grad_rms",
                                "value": 1e-2 * 2.0 ** (i - len(layers)) / step,
                            }
                        )
    return pd.DataFrame(rows)


def metrics_table() -> pd.DataFrame:
    rows = []
    for a in ACTS:
        for seed in (0, 1):
            for epoch in range(1, 6):
                rows.append(
                    {
                        "experiment": "digits_mlp_d2",
                        "dataset": "digits",
                        "model": "mlp",
                        "activation": a,
                        "seed": seed,
                        "epoch": epoch,
                        "val_acc": 0.9 + 0.01 * epoch,
                        "train_acc": min(1.0, 0.8 + 0.05 * epoch),
                    }
                )
    return pd.DataFrame(rows)


def write(tmp_path: Path, name: str, df: pd.DataFrame, drop_depth: bool = False) -> str:
    path = tmp_path / f"{name}.parquet"
    (df.drop(columns="depth") if drop_depth else df).to_parquet(path, index=False)
    return str(path)


def exp_args(tmp_path: Path, stem: str, group: bool = False) -> list[str]:
    """The command line of an experiment's figure (--experiment), or with `group` of a figure across
    the experiments of one dataset and model (--dataset, --model)."""
    return [
        *(
            ["--dataset", "digits", "--model", "mlp"]
            if group
            else ["--experiment", "digits_mlp_d2", "--label", names.experiment("digits", "mlp")]
        ),
        "--activations",
        *ACTS,
        "--out",
        str(tmp_path / f"{stem}.png"),
        str(tmp_path / f"{stem}.svg"),
    ]


# -----------------------------------------------------------------------------
# provenance: in the metadata, not in the picture


def test_provenance_is_in_the_metadata_not_in_the_picture(tmp_path, drawn):
    fig = drawn("fig_activations", ["--activations", *ACTS, "--out", str(tmp_path / "a.png"), str(tmp_path / "a.svg")])
    assert not [t for t in texts(fig) if "made by" in t], texts(fig)
    assert not fig.texts or not any("fig_activations" in t.get_text() for t in fig.texts)
    meta = Image.open(tmp_path / "a.png").text
    assert meta["Description"].startswith("made by workflow/scripts/fig_activations.py"), meta
    assert meta["Source"] == "workflow/scripts/fig_activations.py"
    assert "conf/activation/relu.yaml" in meta["Description"]  # the inputs
    svg = (tmp_path / "a.svg").read_text()
    assert "<dc:source>workflow/scripts/fig_activations.py</dc:source>" in svg
    assert "made by workflow/scripts/fig_activations.py" in svg


def test_a_bad_output_format_writes_nothing(tmp_path, capsys):
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "fig_activations.py"),
            "--activations",
            "relu",
            "--out",
            str(tmp_path / "a.png"),
            str(tmp_path / "a.pdf"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("error: ")
    assert not list(tmp_path.iterdir())


# -----------------------------------------------------------------------------
# the activation plot: no vertical connector at a derivative's jump


def test_derivative_lines_break_at_the_registry_kinks(tmp_path, drawn):
    names_ = ["relu", "selu", "gelu"]
    fig = drawn("fig_activations", ["--activations", *names_, "--out", str(tmp_path / "a.png")])
    for ax, name in zip(fig.axes, names_):
        (dashed,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        x, y = np.asarray(dashed.get_xdata(), float), np.asarray(dashed.get_ydata(), float)
        kinks = activations.spec(name).kinks
        for k in kinks:
            assert np.isnan(y[x == k]).all() and (x == k).sum() == 1, (name, k)
        # everywhere else f' is drawn: the only NaNs are the kinks
        assert np.isnan(y).sum() == len(kinks), name
        # and no drawn segment jumps: consecutive finite values differ by a small step only
        finite = np.isfinite(y[:-1]) & np.isfinite(y[1:])
        assert np.abs(np.diff(y))[finite].max() < 0.1, name


# -----------------------------------------------------------------------------
# names and units of the text


def test_dead_units_figure_of_a_deep_net_wraps_its_layers(tmp_path, drawn):
    """Eight hidden layers: two blocks of 4 panels side by side (no-gradient and low-variance rows in
    each), not 8 columns shrunk to the page's width; every layer drawn once per measure."""
    args = ["--curves", write(tmp_path, "dead8", dead_table(depths=(8,)))] + exp_args(tmp_path, "d8")
    args[args.index("digits_mlp_d2")] = "digits_mlp_d8"
    fig = drawn("fig_dead_units", args)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_lines()]
    assert len(panels) == 16
    grid = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in panels}
    assert grid == {(r, c) for r in range(4) for c in range(4)}
    titles = [ax.get_title() for ax in panels if ax.get_title()]
    assert sorted(titles) == sorted(f"hidden layer {i}" for i in range(1, 9))
    width, height = fig.get_size_inches()
    assert width < 13 and height > width / 2  # about as tall as wide, not a strip


def test_dead_units_figure_uses_the_articles_names_and_the_no_gradient_measure(tmp_path, drawn):
    fig = drawn("fig_dead_units", ["--curves", write(tmp_path, "dead", dead_table())] + exp_args(tmp_path, "d"))
    words = " ".join(texts(fig))
    assert "hidden layer 1" in words and "hidden layer 2" in words
    assert "act1" not in words and "digits / mlp" not in words
    assert names.experiment("digits", "mlp") in words
    for a in ACTS:
        assert activations.spec(a).display in words
    # one line per activation and layer, each with its own marker (lines at 0% stay distinguishable)
    ax = fig.axes[0]
    markers = {line.get_marker() for line in ax.get_lines()}
    assert len(ax.get_lines()) == len(ACTS) and len(markers) == len(ACTS)
    relu = [line for line in ax.get_lines() if line.get_label() == "ReLU"][0]
    assert np.allclose(relu.get_ydata(), [0.0, 0.05, 0.10, 0.15])  # the no-gradient fraction, mean of seeds


def test_accuracy_figure_in_percent_and_pp(tmp_path, drawn):
    runs = runs_table()
    summary = write(tmp_path, "summary", runs)
    acc = runs.groupby(["experiment", "dataset", "model", "activation"], as_index=False)["test_acc"].agg(
        ["mean", "count"]
    )
    acc = acc.assign(metric="test_acc", ci_low=acc["mean"] - 0.01, ci_high=acc["mean"] + 0.01, n=acc["count"])
    acc.to_csv(tmp_path / "accuracy.csv", index=False)
    vs = pd.DataFrame(
        [
            {
                "experiment": "digits_mlp_d2",
                "dataset": "digits",
                "model": "mlp",
                "activation": a,
                "metric": "test_acc",
                "mean_diff": 0.0123,
                "p_holm": 0.5,
            }
            for a in ACTS
            if a != "relu"
        ]
    )
    vs.to_csv(tmp_path / "vs.csv", index=False)
    fig = drawn(
        "fig_accuracy",
        ["--summary", summary, "--accuracy", str(tmp_path / "accuracy.csv"), "--vs-baseline", str(tmp_path / "vs.csv")]
        + exp_args(tmp_path, "acc"),
    )
    fig.canvas.draw()
    words = texts(fig)
    # the margin reads as the article's table: its header, one decimal, a typographic minus
    assert "− ReLU, pp  Holm p" in words and not any("pts" in t or "p_holm" in t for t in words)
    assert "+1.2  0.500" in words  # a difference of 0.0123 is +1.2 pp
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert ticks and all(t.endswith("%") for t in ticks), ticks


def test_learning_curves_on_a_linear_percent_axis_from_zero(tmp_path, drawn):
    fig = drawn("fig_learning_curves", ["--curves", write(tmp_path, "m", metrics_table())] + exp_args(tmp_path, "lc"))
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    train = [line for line in ax.get_lines() if line.get_linestyle() == "--"][0]
    assert train.get_ydata()[-1] == 0.0  # a training error of 0 is drawn at 0, not at a floor
    assert ax.get_title().startswith("ReLU: ") and ax.get_title().split(": ")[1].split(" ")[0].endswith("%")


def test_accuracy_vs_units_without_gradient_uses_the_no_gradient_fraction(tmp_path, drawn):
    fig = drawn("fig_accuracy_vs_dead", ["--summary", write(tmp_path, "s", runs_table())] + exp_args(tmp_path, "avd"))
    left = fig.axes[0]
    xs = np.concatenate([c.get_offsets()[:, 0] for c in left.collections])
    assert sorted(set(np.round(xs, 6))) == [0.02, 0.05, 0.1]  # every activation non-zero, not ReLU's alone
    assert "no gradient" in left.get_xlabel()


def test_grad_flow_draws_rms_gradient_per_layer(tmp_path, drawn):
    fig = drawn(
        "fig_grad_flow", ["--curves", write(tmp_path, "g", grad_table()), "--smooth", "1"] + exp_args(tmp_path, "gf")
    )
    assert [ax.get_title() for ax in fig.axes] == ["hidden layer 1", "hidden layer 2", "output layer"]
    relu = [line for line in fig.axes[0].get_lines() if line.get_label() == "ReLU"][0]
    assert np.allclose(relu.get_ydata(), 1e-2 * 2.0**-3 / np.array([1, 5, 10, 15]))


# -----------------------------------------------------------------------------
# across depth


@pytest.mark.parametrize("depths", [(2,), (2, 4, 8)])
def test_across_depth_figure(tmp_path, drawn, depths):
    runs = runs_table(depths)
    args = [
        "--summary",
        write(tmp_path, "s", runs),
        "--grad-flow",
        write(tmp_path, "g", grad_table(depths), drop_depth=len(depths) == 1),
        "--dead-units",
        write(tmp_path, "d", dead_table(depths), drop_depth=len(depths) == 1),
    ]
    fig = drawn("fig_across_depth", args + exp_args(tmp_path, "ad", group=True))
    top = fig.axes[0]
    assert len(fig.axes) == 1 + 3 * len(depths)  # accuracy + (first step, last step, no gradient) per depth
    words = " ".join(texts(fig))
    assert ("this sweep has one depth" in words) == (len(depths) == 1)
    # accuracy against depth: one line per activation through every depth, in %
    relu = [c for c in top.containers if c.get_label() == "ReLU"][0]
    assert len(relu.lines[0].get_xdata()) == len(depths)
    means = runs[runs["activation"] == "relu"].groupby("depth")["test_acc"].mean().to_numpy()
    assert np.allclose(relu.lines[0].get_ydata(), means)
    # gradient profile of the deepest net: one point per weight layer
    grad_ax = fig.axes[len(depths)]
    x = np.asarray(grad_ax.get_lines()[0].get_xdata(), float)
    assert len(x) == depths[-1] + 1 and np.allclose(np.diff(x), 1)
    assert Image.open(tmp_path / "ad.png").text["Source"] == "workflow/scripts/fig_across_depth.py"


def test_across_depth_refuses_curves_it_cannot_match_to_a_depth(tmp_path):
    # one experiment name for two depths (a table no sweep writes): its curves cannot be told apart
    one = {"experiment": "digits_mlp"}
    args = [
        "--summary",
        write(tmp_path, "s", runs_table((2, 4)).assign(**one)),
        "--grad-flow",
        write(tmp_path, "g", grad_table((2, 4)).assign(**one), True),
        "--dead-units",
        write(tmp_path, "d", dead_table((2, 4)).assign(**one), True),
    ]
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "fig_across_depth.py"), *args, *exp_args(tmp_path, "ad", group=True)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "depth" in proc.stderr, proc.stderr
    assert not (tmp_path / "ad.png").exists()


def test_one_naming_table_for_the_article_and_the_figures():
    sys.path.insert(0, str(ROOT / "paper"))
    bd = importlib.import_module("bookdata")
    assert bd.DATASETS is names.DATASETS and bd.MODELS is names.MODELS and bd.INITS is names.INITS
    assert names.layer("act3") == names.layer("fc3") == "hidden layer 3" and names.layer("out") == "output layer"
    assert sorted(["act10", "act2", "act1"], key=names.layer_order) == ["act1", "act2", "act10"]


def test_the_figures_theme_is_seaborns():
    """figlib.setup() sets what sns.set_theme(context="paper", style="ticks") sets (without importing
    seaborn, which imports scipy.stats): every rcParam but image.cmap, and the colour codes."""
    code = f"""
import sys
sys.path.insert(0, {str(SCRIPTS)!r})
import matplotlib
matplotlib.use("Agg")
import matplotlib as mpl
import figlib


def state():
    return {{k: repr(v) for k, v in mpl.rcParams.items() if k != "image.cmap"}}, {{
        c: mpl.colors.to_rgb(c) for c in "bgrmyck"
    }}


assert "seaborn" not in sys.modules
mpl.rcdefaults()
figlib.setup()
ours = state()
import seaborn as sns

mpl.rcdefaults()
for c in "bgrmyck":
    mpl.colors.colorConverter.colors[c] = (0.0, 0.0, 0.0)
sns.set_theme(context="paper", style="ticks", font_scale=1.0)
mpl.rcParams.update(figlib.STYLE)
theirs = state()
assert ours[1] == theirs[1], (ours[1], theirs[1])
diff = {{k: (ours[0][k], theirs[0][k]) for k in ours[0] if ours[0][k] != theirs[0][k]}}
assert not diff, diff
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
