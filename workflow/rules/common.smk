# Helpers shared by the rules: where things go, the checked sweep, and each job's Hydra overrides.
# Functions and constants only (no rules here).
import functools
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.basedir)  # the directory of the Snakefile: conf/, workflow/, paper/
CONF = REPO / "conf"
SCRIPTS = Path(os.path.relpath(REPO / "workflow" / "scripts"))  # inputs: relative to the working dir
# Jobs run `python` / `jupyter-book` from the environment snakemake itself runs in (the project's venv),
# even when snakemake was started as .venv/bin/snakemake without activating the venv (make paper).
# They import actlab from this checkout's src/ (whatever actlab the environment has installed): the code
# that runs is the code the rules fingerprint (code_fingerprint, below).
_PYTHONPATH = ":".join([str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
shell.prefix(
    f'PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; export PATH; '
    f"PYTHONPATH={shlex.quote(_PYTHONPATH)}; export PYTHONPATH; "
)

# The software environment of all the jobs (documented; used with `--sdm conda`).
ENV = "../envs/actlab.yaml"  # relative to workflow/rules/; the pins of environment.yml without `-e .`

# Every output lives under results/ (relative to the working directory). Runs and downloads are shared
# by every sweep (a run dir is keyed by its experiment's settings: experiment_key); a sweep's tables,
# figures, logs and book live in its own directory (sweep_name): the default sweep's in results/ and
# paper/_build/html/, any other's in results/sweeps/<name>/, so sweeps coexist and never overwrite
# each other.
RESULTS_ROOT = Path("results")
RUNS = RESULTS_ROOT / "runs"
RUN = RUNS / "{experiment}" / "{key}" / "{activation}" / "seed{seed}"
# learning-rate selection (sweep config lr_selection): its runs and table live with the runs they govern
LR_RUNS = RUNS / "{experiment}" / "{key}" / "lr_selection"
LR_RUN = LR_RUNS / "lr{lr}" / "{activation}" / "seed{seed}"
LR_TABLE = LR_RUNS / "lr_selection.csv"
DATA_MARKS = RESULTS_ROOT / "data"


def _sweep_content(cfg):
    """What in a sweep config changes its results (not its name, grouping or resources), defaults filled."""
    out = {k: v for k, v in cfg.items() if k not in ("name", "group_by", "resources")}
    out.setdefault("baseline", "relu")
    out.setdefault("overrides", [])
    out["experiments"] = [
        {"name": f"{e['dataset']}_{e['model']}", "overrides": [], **{k: v for k, v in e.items() if k != "priority"}}
        for e in cfg.get("experiments", [])
    ]
    return out


def sweep_name(cfg):
    """The sweep's name (config `name`, default `default`). The name `default` belongs to the settings
    of conf/sweep/default.yaml: a sweep called default with other settings (a --configfile without a
    name, --config overrides=[...]) becomes default_<hash of its settings>, with its own directory."""
    name = cfg.get("name", "default")
    if name != "default":
        return name
    with open(CONF / "sweep" / "default.yaml") as f:
        default = yaml.safe_load(f)
    mine = _sweep_content(cfg)
    if json.dumps(mine, sort_keys=True, default=str) == json.dumps(
        _sweep_content(default), sort_keys=True, default=str
    ):
        return "default"
    digest = hashlib.sha256(json.dumps(mine, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"default_{digest}"


SWEEP = sweep_name(config)
RESULTS = RESULTS_ROOT if SWEEP == "default" else RESULTS_ROOT / "sweeps" / SWEEP  # this sweep's outputs
LOGS = RESULTS / "logs"
BENCH = RESULTS / "benchmarks"
CURVES = RESULTS / "curves"
STATS = RESULTS / "stats"
FIGURES = RESULTS / "figures"
DEPTH = RESULTS / "depth"


# Overrides the pipeline itself sets for every run; a sweep config may not set them.
RESERVED = {
    "experiment",
    "seed",
    "seeds",
    "activation",
    "activations",
    "data",
    "model",
    "run_dir",
    "trainer.threads",
    "trainer.progress",
}


def _choices(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _fail(message):
    raise WorkflowError(f"invalid sweep config: {message}")


def _check_names(values, group, where):
    valid = _choices(group)
    unknown = [v for v in values if v not in valid]
    if unknown:
        _fail(
            f"{where}: unknown {group} {', '.join(map(repr, unknown))}; valid: {', '.join(valid)} "
            f"(conf/{group}/*.yaml)"
        )


def _check_overrides(overrides, where):
    for o in overrides:
        key = o.lstrip("+~").partition("=")[0]
        if key in RESERVED or key.startswith("hydra."):
            _fail(
                f"{where}: override {o!r} sets {key!r}, which the pipeline sets itself "
                f"(from experiments/activations/seeds/resources)"
            )


def _check_composes(overrides, where):
    """Compose the real Hydra config once and run the training CLI's own value checks on it
    (actlab.checks.check_values: max_epochs, lr, width, vectorize_max_k, checkpoint interval, probes,
    seeds, ...), so a bad value fails now, in one line, not in every training job."""
    from omegaconf.errors import OmegaConfBaseException

    from actlab.activations import UnknownActivation
    from actlab.checks import check_values  # no torch, no Lightning: this runs in every snakemake command
    from actlab.config import compose  # the CLI's compose: Hydra's report on one line, the schema's keys all set
    from actlab.errors import ConfigError

    try:
        cfg = compose(overrides)
    except ConfigError as e:
        _fail(f"{where}: the Hydra overrides {list(overrides)} do not compose: {e}")
    if not workflow.is_main_process:  # a cluster job re-reading the Snakefile: checked once, by the main process
        return
    try:
        check_values(cfg)
    except (ConfigError, UnknownActivation, OmegaConfBaseException) as e:
        _fail(f"{where}: {' '.join(str(e).split())}")


def _sweep_jobs(config, e, overrides):
    """Activation/seed overrides that stand for an experiment's training jobs (train_overrides): the
    whole sweep as one job (group_by: experiment exactly; for the smaller jobs the same values, as
    each compose costs ~0.1 s), but one job per activation when the overrides set activation
    parameters, which a list of activations refuses."""
    seeds = f"seeds=[{','.join(map(str, config['seeds']))}]"
    run_dir = f"run_dir={RUNS / e['name'] / experiment_key(e) / '${activation.name}' / 'seed${seed}'}"
    if config["group_by"] == "experiment" or not any(o.lstrip("+~").startswith("activation.") for o in overrides):
        return [[f"activations=[{','.join(config['activations'])}]", seeds, run_dir]]
    return [[f"activation={a}", seeds, run_dir] for a in config["activations"]]


def check_sweep(config):
    """Schema first (types, empty lists, unknown keys), then names and overrides. Fills defaults."""
    schema = REPO / "workflow" / "schemas" / "sweep.schema.yaml"
    if "multi_seed" in config:  # replaced by group_by (activation = multi_seed: true, run = false)
        _fail(
            f"multi_seed was replaced by group_by: write group_by: "
            f"{'activation' if config['multi_seed'] else 'run'} (or experiment, the default)"
        )
    try:
        validate(config, str(schema))
    except WorkflowError as e:  # one line naming the offending key instead of the whole schema
        import jsonschema

        error = e.__cause__ or e.__context__  # validate() raises it while handling the ValidationError
        if not isinstance(error, jsonschema.ValidationError):
            raise
        where = ".".join(map(str, error.absolute_path)) or "top level"
        _fail(f"{where}: {error.message} (schema: workflow/schemas/{schema.name})")
    if any(isinstance(s, float) for s in config["seeds"]):  # JSON Schema calls 1.0 an integer
        _fail(f"seeds must be integers, got {config['seeds']}")
    for e in config["experiments"]:  # validate() fills schema defaults at the top level only
        e.setdefault("overrides", [])
        e.setdefault("name", f"{e['dataset']}_{e['model']}")
    _check_names(config["activations"], "activation", "activations")
    _check_names(config["depth"]["activations"], "activation", "depth.activations")
    _check_names(config["depth"].get("controls", []), "activation", "depth.controls")
    if config["baseline"] not in config["activations"]:
        _fail(f"baseline {config['baseline']!r} is not among the activations {config['activations']}")
    pairs = [(e["dataset"], e["model"]) for e in config["experiments"]]
    names = [e["name"] for e in config["experiments"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        _fail(
            f"experiments: the name(s) {', '.join(dupes)} are given to more than one experiment; "
            f"name each (name: ...), e.g. when one dataset and model appear with two depths"
        )
    _check_names([d for d, _ in pairs], "data", "experiments")
    _check_names([m for _, m in pairs], "model", "experiments")
    _check_overrides(config["overrides"], "overrides")
    for e in config["experiments"]:
        where = f"experiment {e['name']}"
        _check_overrides(e["overrides"], where)
        overrides = [*config["overrides"], *e["overrides"]]
        for job in _sweep_jobs(config, e, overrides):
            _check_composes([f"data={e['dataset']}", f"model={e['model']}", *job, *overrides], where)
    _check_names(config["depth"]["collapse"]["activations"], "activation", "depth.collapse.activations")
    if "prelu" in config["depth"]["collapse"]["activations"]:
        _fail(
            "depth.collapse.activations: prelu has a learned slope, which the collapse study's "
            "vectorised seeds would share; use parameter-free activations"
        )
    if SWEEP != config.get("name", "default") and workflow.is_main_process:  # a valid sweep: say where it goes
        print(
            f"actlab: this sweep's settings are not conf/sweep/default.yaml's: it is sweep {SWEEP!r}, "
            f"results in {RESULTS}/ (give it a name: --config name=...)",
            file=sys.stderr,
        )


# -----------------------------------------------------------------------------
# the sweep, as lists the rules expand over


def experiments():
    return config["experiments"]


def experiment(name):
    for e in config["experiments"]:
        if e["name"] == name:
            return e
    raise WorkflowError(f"no experiment {name!r} in the sweep config")


def experiment_key(e):
    """8 hex digits naming everything an experiment's training job is given: dataset, model, every
    override, the activations and seeds, the grouping. Its runs live in results/runs/<name>/<key>/, so
    a sweep with other settings (a depth, more epochs) gets other run dirs instead of overwriting
    these, and a sweep run again finds its own. (The lists are part of it because a training job is
    keyed by them: a job that trained these runs would otherwise be rerun, deleting them, by a sweep
    listing other activations.)"""
    what = {
        "dataset": e["dataset"],
        "model": e["model"],
        "overrides": [*config["overrides"], *e["overrides"]],
        "activations": config["activations"],
        "seeds": config["seeds"],
        "group_by": config["group_by"],
        "lr_selection": config.get("lr_selection"),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]


def train_priority(base):
    """A training rule's priority for one experiment's jobs: `base` (selection 2, study 1: the study
    waits for the selection) raised by twice the experiment's `priority`, so that the whole chain of
    a high-priority experiment (its selection, then its study) goes before other experiments' jobs."""

    def priority(wildcards):
        return base + 2 * experiment(wildcards.experiment).get("priority", 0)

    return priority


def run_dirs(**only):
    """Every run of the sweep (optionally only those matching experiment=, activation=, seed=)."""
    out = []
    for e in config["experiments"]:
        for act in config["activations"]:
            for seed in config["seeds"]:
                wc = {"experiment": e["name"], "key": experiment_key(e), "activation": act, "seed": seed}
                if all(wc[k] == v for k, v in only.items()):
                    out.append(Path(str(RUN).format(**wc)))
    return out


def all_summaries(wildcards=None):
    return [str(d / "summary.json") for d in run_dirs()]


@functools.cache  # composes the sweep's Hydra configs: once per snakemake process
def experiment_configs():
    """{experiment name: its composed Hydra config (with the sweep's first activation)}."""
    from hydra import compose, initialize_config_dir

    from actlab.config import CONF_DIR

    out = {}
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for e in config["experiments"]:
            out[e["name"]] = compose(
                config_name="config",
                overrides=[
                    f"data={e['dataset']}",
                    f"model={e['model']}",
                    f"activation={config['activations'][0]}",  # overrides may set its parameters
                    *config["overrides"],
                    *e["overrides"],
                ],
            )
    return out


def experiment_label(name):
    """The article's name of an experiment: 'MNIST-1D, 8 x 128 MLP' (actlab.names)."""
    from actlab import names

    cfg = experiment_configs()[name]
    return names.experiment(cfg.data.name, cfg.model.name, depth=cfg.model.depth, width=cfg.model.width)


@functools.cache
def run_files():
    """The files of one finished run the rules declare (train's outputs, aggregate's inputs, all's
    targets): its summary.json alone, written last. Every other file of the run (config.yaml,
    metrics.csv, the probe tables, SHA256SUMS) is kept by its integrity record instead: before the DAG,
    reject_damaged_runs() sets aside the summary.json of a run with any of them missing or edited, so
    that run retrains. (Declaring each file too printed every run path three times per training job.)"""
    return ("summary.json",)


def all_run_files(wildcards=None):
    """The declared file of every run of the sweep (run_files() of each run dir)."""
    return [str(d / name) for d in run_dirs() for name in run_files()]


def lr_run_dirs():
    """Every learning-rate selection run of the sweep (config lr_selection)."""
    sel = config.get("lr_selection")
    if not sel:
        return []
    return [
        Path(str(LR_RUN).format(experiment=e["name"], key=experiment_key(e), lr=lr_label(lr), activation=a, seed=s))
        for e in config["experiments"]
        for lr in sel["grid"]
        for a in config["activations"]
        for s in sel["seeds"]
    ]


def reject_damaged_runs():
    """Called before the DAG is built (workflow/rules/train.smk): every finished run of the sweep and
    of its learning-rate selection (its summary.json exists) whose files are not exactly what its
    trainer wrote (actlab.integrity: a file missing, edited or damaged, or no SHA256SUMS) is named in
    one line and its summary.json renamed to summary.json.rejected (kept for inspection), so that Snakemake sees the run unfinished and retrains
    it instead of aggregating it. Also under --dry-run, so that it shows the retraining. Only in the
    main snakemake process: a cluster job's own snakemake would race the runs being written."""
    from actlab import integrity

    if not workflow.is_main_process:
        return
    for run_dir in [*run_dirs(), *lr_run_dirs()]:
        summary = run_dir / "summary.json"
        if not summary.is_file():
            continue
        try:
            integrity.verify(run_dir)
        except integrity.IntegrityError as e:
            rejected = summary.with_name("summary.json.rejected")
            os.replace(summary, rejected)
            print(
                f"actlab: rejected run {run_dir}: {e}; moved its summary.json to {rejected.name}, "
                f"it will be retrained",
                file=sys.stderr,
            )


# -----------------------------------------------------------------------------
# code-aware reruns: a job's params carry a fingerprint of the code that makes its outputs

SRC = REPO / "src" / "actlab"


def _module_imports(path):
    """The actlab modules `path` imports (any `import actlab.x` / `from actlab import x` / `from
    actlab.x import y`, at module level or inside functions)."""
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        for n in names:
            parts = n.split(".")
            if parts[0] == "actlab" and len(parts) > 1 and (SRC / f"{parts[1]}.py").is_file():
                out.add(parts[1])
    return out


@functools.cache
def code_fingerprint(*entry_modules):
    """SHA-256 (12 hex digits) of the code the CLI `python -m actlab.<entry>` runs: every actlab module
    it imports, transitively, as its syntax tree with docstrings removed (so comments, docstrings and
    formatting do not count; any change to what runs does), plus the config groups of conf/ (parsed
    YAML: comments do not count). Used as a param of the rules that run that code: Snakemake reruns a
    job whose params changed (rerun-triggers), so editing training code retrains, editing a docstring
    does not."""
    import ast
    import hashlib
    import json

    seen, todo = set(), list(entry_modules)
    while todo:
        m = todo.pop()
        if m not in seen and (SRC / f"{m}.py").is_file():
            seen.add(m)
            todo += _module_imports(SRC / f"{m}.py")
    h = hashlib.sha256()
    for m in sorted(seen):
        tree = ast.parse((SRC / f"{m}.py").read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
        for part in (m, ast.dump(tree)):
            h.update(part.encode())
            h.update(b"\0")
    for f in sorted(CONF.rglob("*.yaml")):
        if f.parent.name != "sweep":
            h.update(str(f.relative_to(CONF)).encode())
            h.update(json.dumps(yaml.safe_load(f.read_text()), sort_keys=True).encode())
    return h.hexdigest()[:12]


# -----------------------------------------------------------------------------
# datasets that must be downloaded first


def dataset_config(name):
    with open(CONF / "data" / f"{name}.yaml") as f:
        return yaml.safe_load(f) or {}


def needs_download(name):
    """A dataset is fetched from the network when its config names a URL (mnist, fashion_mnist,
    cifar10); digits and the synthetic sets are built locally."""
    cfg = dataset_config(name)
    return bool(cfg.get("url") or cfg.get("base_url"))


def data_marks(wildcards):
    dataset = experiment(wildcards.experiment)["dataset"]
    if needs_download(dataset):
        return [str(DATA_MARKS / f"{dataset}.txt")]
    return []


# -----------------------------------------------------------------------------
# the training jobs' Hydra overrides (their params: a change reruns exactly the affected jobs)

# (Param functions must not take `threads`: Snakemake leaves such "derived" params out of its params
# rerun trigger. The thread count goes on the command line instead: trainer.threads={threads}.)


def base_overrides(wildcards):
    e = experiment(wildcards.experiment)
    return [
        f"data={e['dataset']}",
        f"model={e['model']}",
        f"experiment={e['name']}",
        "trainer.progress=quiet",
        *config["overrides"],
        *e["overrides"],
    ]


def sweep_experiment(wildcards):
    """The experiment of a training job's wildcards, refusing a run dir key of other settings."""
    e = experiment(wildcards.experiment)
    if wildcards.key != experiment_key(e):  # a run dir of this experiment with other settings
        raise WorkflowError(f"{RUNS / e['name'] / wildcards.key} holds runs of other settings than this sweep's")
    return e


def lr_table(wildcards):
    """The experiment's learning-rate selection table (an input of its training jobs), if the sweep
    selects learning rates."""
    if not config.get("lr_selection"):
        return []
    return [str(LR_TABLE).format(experiment=wildcards.experiment, key=wildcards.key)]


def lr_label(lr):
    """A grid value as a path part: 0.001 -> 0.001, 1e-05 -> 1e-05 (repr of the float)."""
    return repr(float(lr))


def lr_runs(wildcards):
    """Every selection run's summary.json of one experiment: the inputs of select_lr."""
    sel = config["lr_selection"]
    return [
        str(LR_RUN / "summary.json").format(
            experiment=wildcards.experiment, key=wildcards.key, lr=lr_label(lr), activation=a, seed=s
        )
        for lr in sel["grid"]
        for a in config["activations"]
        for s in sel["seeds"]
    ]


def lr_train_overrides(wildcards):
    """One selection job: every activation x rate of the grid x selection seed of one experiment."""
    e = sweep_experiment(wildcards)
    sel = config["lr_selection"]
    runs = Path(str(LR_RUNS).format(experiment=wildcards.experiment, key=wildcards.key))
    return [
        "activations=[" + ",".join(config["activations"]) + "]",
        "seeds=[" + ",".join(map(str, sel["seeds"])) + "]",
        # the dir's lr<rate> is lr_label(rate): the float's repr, as ${optimizer.lr} prints it
        f"run_dir={runs / 'lr${optimizer.lr}' / '${activation.name}' / 'seed${seed}'}",
        f"hydra.run.dir={LOGS / 'lr_selection' / wildcards.experiment / 'train.hydra'}",
        *base_overrides(wildcards),
        # last: the grid's rates, whatever the overrides say; the probes measure the study, not this
        "lrs=[" + ",".join(lr_label(lr) for lr in sel["grid"]) + "]",
        "probes.dead_units.enabled=false",
        "probes.grad_flow.enabled=false",
    ]


def all_lr_tables(wildcards=None):
    if not config.get("lr_selection"):
        return []
    return [str(LR_TABLE).format(experiment=e["name"], key=experiment_key(e)) for e in config["experiments"]]


def lr_table_override(wildcards):
    return [f"lr_table={t}" for t in lr_table(wildcards)]


def train_overrides(wildcards):
    """One training job (config["group_by"] says which runs it trains, workflow/rules/train.smk):
    run = seed=S and its run_dir; activation = seeds=[...] of one activation; experiment =
    activations=[...] x seeds=[...] of one experiment. Several runs train in one process with
    one run_dir each (Hydra resolves ${activation.name} and ${seed} per run); Hydra's own job files
    then go beside the job's log (results/logs/train/.../<job>.hydra)."""
    e = sweep_experiment(wildcards)
    if config["group_by"] == "run":
        run_dir = Path(str(RUN).format(**wildcards))
        return [
            f"seed={wildcards.seed}",
            f"activation={wildcards.activation}",
            f"run_dir={run_dir}",
            *base_overrides(wildcards),
            *lr_table_override(wildcards),
        ]
    seeds = "seeds=[" + ",".join(str(s) for s in config["seeds"]) + "]"
    if config["group_by"] == "activation":
        job = Path(wildcards.experiment) / wildcards.key / wildcards.activation
        which = f"activation={wildcards.activation}"
    else:  # experiment
        job = Path(wildcards.experiment) / wildcards.key
        which = "activations=[" + ",".join(config["activations"]) + "]"
    run_dir = RUNS / wildcards.experiment / wildcards.key / "${activation.name}" / "seed${seed}"
    return [
        which,
        seeds,
        f"run_dir={run_dir}",
        f"hydra.run.dir={(LOGS / 'train' / job).with_suffix('.hydra')}",
        *base_overrides(wildcards),
        *lr_table_override(wildcards),
    ]


# -----------------------------------------------------------------------------
# what `snakemake` (rule all) builds

# the default sweep's book where the README says; another sweep's beside its results
BOOK_INDEX = (Path("paper") / "_build" if SWEEP == "default" else RESULTS / "book") / "html" / "index.html"


def all_figures(wildcards=None):
    """Every figure of every workflow/scripts/fig_*.py (figures.smk figure_scripts), PNG and SVG, for each
    experiment, (dataset, model) group or once, as its FIGURE's scope says."""
    out = []
    for name, meta in figure_scripts().items():
        for where in figure_places(meta["scope"]):
            out += [str(Path(str(FIGURE_DIR[meta["scope"]]).format(**where)) / f"{name}.{s}") for s in ("png", "svg")]
    return out


def all_tables(wildcards=None):
    return [
        str(p)
        for p in (
            RESULTS / "summary.csv",
            RESULTS / "summary.parquet",
            STATS / "accuracy.csv",
            STATS / "vs_relu.csv",
            STATS / "power.csv",
            STATS / "compute.csv",
            *([STATS / "lr_selection.csv"] if config.get("lr_selection") else []),
            STATS / "timing.csv",
            DEPTH / "born_dead.csv",
            DEPTH / "collapse.csv",
        )
    ]


def book_sources(wildcards=None):
    """Every file of the book's source in the repository's paper/ (pages, code, bibliography,
    extensions, static files), so any edit rebuilds it; not its build output (paper/_build) nor
    editor/Python caches."""
    src = REPO / "paper"
    skip = {"_build", "__pycache__", ".ipynb_checkpoints", ".jupyter_cache"}
    return sorted(
        str(p)
        for p in src.rglob("*")
        if p.is_file() and not skip.intersection(p.relative_to(src).parts) and not p.name.startswith(".")
    )


def all_targets(wildcards=None):
    # every run's summary.json too: Snakemake does not rerun a job whose outputs are missing when the
    # jobs that consume them are up to date, so a vanished run would otherwise be "Nothing to be done"
    return [*all_run_files(), *all_tables(), *all_figures(), str(BOOK_INDEX)]


def depth_args(wildcards=None):
    """The command line of python -m actlab.depth for the sweep's `depth` settings."""
    d, c = config["depth"], config["depth"]["collapse"]
    join = lambda values: ",".join(map(str, values))
    return [
        "--activations",
        join(d["activations"]),
        "--controls",
        join(d.get("controls", [])),
        "--control-trials",
        str(d.get("control_trials", d["trials"])),
        "--inits",
        join(d["inits"]),
        "--depths",
        join(d["depths"]),
        "--widths",
        join(d["widths"]),
        "--trials",
        str(d["trials"]),
        "--grid",
        str(d["grid"]),
        "--seed",
        str(d["seed"]),
        "--collapse",
        "--collapse-activations",
        join(c["activations"]),
        "--collapse-cells",
        join(c["cells"]),
        "--collapse-seeds",
        str(c["seeds"]),
        "--collapse-min-steps",
        str(c["min_steps"]),
        "--collapse-max-steps",
        str(c["max_steps"]),
        "--collapse-window",
        str(c["plateau_window"]),
        "--collapse-tol",
        str(c["plateau_tol"]),
        "--collapse-lr",
        str(c["lr"]),
    ]


# -----------------------------------------------------------------------------
# the controlled timing of claim (d) (workflow/rules/timing.smk)

TIMING_REPEATS = 31  # measured rounds (~5 s on the default sweep): the 95% CI of the median = 10th to 22nd value
TIMING_WARMUP = 2  # rounds run first and discarded
TIMING_TORCH_THREADS = 1  # torch.set_num_threads in the measuring process


def timing_experiment():
    """The main experiment (the sweep's first) as the wildcards its helpers take."""
    from types import SimpleNamespace

    e = config["experiments"][0]
    return SimpleNamespace(experiment=e["name"], key=experiment_key(e), activation=config["baseline"])


def timing_args(wildcards=None):
    """The command line of python -m actlab.timing: the sweep's activations and the main experiment's
    Hydra overrides (model, data shape, batch size and optimiser come from them; --config goes last)."""
    device = "auto" if config["resources"]["gpu"] else "cpu"  # where the training runs ran
    return [
        "--activations",
        ",".join(config["activations"]),
        "--baseline",
        config["baseline"],
        "--repeats",
        str(TIMING_REPEATS),
        "--warmup",
        str(TIMING_WARMUP),
        "--threads",
        str(TIMING_TORCH_THREADS),
        "--device",
        device,
        "--config",
        *base_overrides(timing_experiment()),
    ]


def timing_cores():
    """Every core of a local run, so that no other job of the workflow shares the machine while the
    timing job measures (seconds on the default sweep); torch itself uses TIMING_TORCH_THREADS."""
    cores = workflow.resource_settings.cores
    return cores if isinstance(cores, int) and cores >= 1 else 1


# -----------------------------------------------------------------------------
# figures (workflow/rules/figures.smk): one rule per workflow/scripts/fig_*.py

FIGURE_SCOPES = {  # where a figure's files go, per experiment / (dataset, model) group / once
    "global": "once, from the whole sweep: results/figures/<name>.png",
    "experiment": "per experiment: results/figures/<experiment>/<name>.png",
    "group": "per dataset and model, across its experiments (depths): results/figures/<dataset>-<model>/<name>.png",
}
FIGURE_DIR = {"global": FIGURES, "experiment": FIGURES / "{experiment}", "group": FIGURES / "{dataset}-{model}"}
FIGURE_LOG = {
    "global": LOGS / "figures",
    "experiment": LOGS / "figures" / "{experiment}",
    "group": LOGS / "figures" / "{dataset}-{model}",
}
FIGURE_ARGS = ("activations", "baseline")  # sweep settings a script may ask for: --activations, --baseline
_FIGURE_KEYS = {"number", "title", "scope", "inputs", "args", "caption"}


def _figure_meta(path):
    """The module-level `FIGURE = {...}` of one figure script, checked (ast.literal_eval: the Snakefile
    neither imports the script nor loads matplotlib)."""
    import ast

    where = os.path.relpath(path)
    fail = lambda message: _fail_figure(f"{where}: {message} (docs/extending.md)")
    try:
        tree = ast.parse(path.read_text(), where)
    except SyntaxError as e:
        fail(f"line {e.lineno}: {e.msg}")
    nodes = [
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "FIGURE" for t in n.targets)
    ]
    if not nodes:
        fail("no module-level FIGURE = {...} saying the figure's scope, inputs and title")
    try:
        meta = ast.literal_eval(nodes[-1])
    except ValueError:
        fail("FIGURE must be a literal dict (strings, numbers, lists, dicts: no names or calls)")
    if not isinstance(meta, dict):
        fail("FIGURE must be a dict")
    unknown = sorted(set(meta) - _FIGURE_KEYS)
    missing = sorted({"title", "scope", "inputs"} - set(meta))
    if unknown or missing:
        fail(f"FIGURE: {'unknown key(s) ' + ', '.join(unknown) if unknown else 'missing ' + ', '.join(missing)}")
    if meta["scope"] not in FIGURE_SCOPES:
        fail(f"FIGURE: scope {meta['scope']!r} is not one of {', '.join(FIGURE_SCOPES)}")
    inputs = meta["inputs"]
    if not isinstance(inputs, dict) or not all(
        isinstance(k, str) and k.isidentifier() and isinstance(v, str) and v and not Path(v).is_absolute()
        for k, v in inputs.items()
    ):
        fail("FIGURE: inputs must map option names (identifiers) to tables under the results directory")
    clash = sorted({"script", "lib"} & set(inputs))
    if clash:
        fail(f"FIGURE: input name(s) {', '.join(clash)} are taken (the script and figlib)")
    bad = sorted(set(meta.get("args", [])) - set(FIGURE_ARGS))
    if bad:
        fail(f"FIGURE: unknown args {', '.join(bad)}; known: {', '.join(FIGURE_ARGS)}")
    name = path.stem.removeprefix("fig_")
    if "caption" not in meta and not (REPO / "workflow" / "report" / f"{name}.rst").is_file():
        fail(f"FIGURE: no caption, and no workflow/report/{name}.rst")
    return meta


def _fail_figure(message):
    raise WorkflowError(f"invalid figure script {message}")


@functools.cache
def figure_scripts():
    """{name: FIGURE} of every workflow/scripts/fig_<name>.py, in figure-number order: each is one
    rule fig_<name> (workflow/rules/figures.smk), a target of `all`, a figure of the report."""
    found = {
        p.stem.removeprefix("fig_"): _figure_meta(p) for p in sorted((REPO / "workflow" / "scripts").glob("fig_*.py"))
    }
    return dict(sorted(found.items(), key=lambda kv: (kv[1].get("number", float("inf")), kv[0])))


def figure_places(scope):
    """The wildcards of each of a scope's figures in this sweep."""
    if scope == "global":
        return [{}]
    if scope == "experiment":
        return [{"experiment": e["name"]} for e in config["experiments"]]
    pairs = dict.fromkeys((e["dataset"], e["model"]) for e in config["experiments"])
    return [{"dataset": d, "model": m} for d, m in pairs]


def figure_label(name, meta):
    """The report's label of a figure: '3 accuracy' (FIGURE number and title)."""
    return f"{meta['number']} {meta['title']}" if "number" in meta else meta["title"]


def figure_output(name, meta):
    """The rule's PNG, marked for the report: its own caption workflow/report/<name>.rst when there is
    one, else the generic workflow/report/figure.rst rendering FIGURE's caption (params.caption)."""
    scope, label = meta["scope"], figure_label(name, meta)
    own = REPO / "workflow" / "report" / f"{name}.rst"
    labels = {
        "global": {},
        "experiment": {"experiment": "{experiment}"},
        "group": {"dataset": "{dataset}", "model": "{model}"},
    }[scope]
    return report(
        FIGURE_DIR[scope] / f"{name}.png",
        caption=f"../report/{name}.rst" if own.is_file() else "../report/figure.rst",
        category="Figures",
        subcategory={"global": label, "experiment": "{experiment}", "group": "{dataset} / {model}"}[scope],
        labels={"figure": label, **labels},
    )


def _experiment_name(wildcards):
    return experiment_label(wildcards.experiment)


def _group_name(wildcards):
    from actlab import names

    return names.experiment(wildcards.dataset, wildcards.model)


def _figure_options(meta):
    """params.options of a figure rule: --<input> <table> ... [--experiment/--label | --dataset/--model]
    [--activations ...] [--baseline ...], quoted: figlib.parser's command line (a function of the
    job's inputs, bound to this script's FIGURE here: a rule's shell command is evaluated when the job
    runs, when a loop variable in it would be the last script's)."""

    def options(wildcards, input):
        args = []
        for key in meta["inputs"]:
            args += [f"--{key.replace('_', '-')}", input[key]]
        if meta["scope"] == "experiment":
            args += ["--experiment", wildcards.experiment, "--label", _experiment_name(wildcards)]
        elif meta["scope"] == "group":
            args += ["--dataset", wildcards.dataset, "--model", wildcards.model]
        if meta["scope"] != "global" or "activations" in meta.get("args", []):
            args += ["--activations", *config["activations"]]
        if "baseline" in meta.get("args", []):
            args += ["--baseline", config["baseline"]]
        return shlex.join(map(str, args))

    return options


def figure_params(meta):
    """The rule's params: the article's name of what the figure is about (experiment: the captions
    use it), FIGURE's caption with {experiment} filled, the script's options (_figure_options)."""
    scope = meta["scope"]
    params = {}
    if scope != "global":
        params["experiment"] = _experiment_name if scope == "experiment" else _group_name
    if scope != "global" or "activations" in meta.get("args", []):  # a param: a changed list redraws
        params["activations"] = config["activations"]
    if "baseline" in meta.get("args", []):
        params["baseline"] = config["baseline"]
    if "caption" in meta:
        text = " ".join(str(meta["caption"]).split())
        label = params.get("experiment")
        params["caption"] = (lambda w: text.replace("{experiment}", label(w))) if label else text
    params["options"] = _figure_options(meta)
    return params


# The command of every figure (its options: params.options, figure_params)
FIGURE_SHELL = "python {input.script:q} {params.options} --out {output.png:q} {output.svg:q} > {log:q} 2>&1"
