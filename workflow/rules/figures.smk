# One rule per figure script: every workflow/scripts/fig_<name>.py is a rule fig_<name>, found
# (figure_scripts, below), not listed. Its module-level FIGURE dict says the scope (once, per
# experiment, per dataset and model), the tables it reads (under this sweep's results dir), the sweep
# settings it takes, its number, title and caption (docs/extending.md). Figures read only aggregated
# tables: restyling one reruns that figure alone (its script is an input), never a training run. Each
# writes PNG + SVG, its provenance (script, commit, inputs) in the files' metadata; the caption names
# the script and the experiment as the article does (params.experiment, from actlab.names).


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


def figure_params(meta):
    """The rule's params: the article's name of what the figure is about (experiment: the captions
    use it), the sweep settings FIGURE's args ask for, and FIGURE's caption with {experiment} filled."""
    scope, args = meta["scope"], meta.get("args", [])
    params = {}
    if scope != "global":
        params["experiment"] = _experiment_name if scope == "experiment" else _group_name
    if scope != "global" or "activations" in args:  # figlib.parser wants --activations with a scope
        params["activations"] = config["activations"]
    if "baseline" in args:
        params["baseline"] = config["baseline"]
    if "caption" in meta:
        text = " ".join(str(meta["caption"]).split())
        label = params.get("experiment")
        params["caption"] = (lambda w: text.replace("{experiment}", label(w))) if label else text
    return params


def figure_shell(name, meta):
    """python fig_<name>.py --<input> <table> ... [--experiment/--label | --dataset/--model]
    [--activations ...] [--baseline ...] --out <png> <svg>: figlib.parser's command line."""
    scope, params = meta["scope"], figure_params(meta)
    parts = ["python {input.script:q}"]
    parts += [f"--{key.replace('_', '-')} {{input.{key}:q}}" for key in meta["inputs"]]
    parts += {
        "global": [],
        "experiment": ["--experiment {wildcards.experiment:q} --label {params.experiment:q}"],
        "group": ["--dataset {wildcards.dataset:q} --model {wildcards.model:q}"],
    }[scope]
    parts += [f"--{arg} {{params.{arg}:q}}" for arg in FIGURE_ARGS if arg in params]
    return " ".join([*parts, "--out {output.png:q} {output.svg:q} > {log:q} 2>&1"])


def figure_rule(name, figure):
    """Rule fig_<name>. A function, not the loop's body: the shell command is evaluated when the job
    runs, and a loop variable would then be the last script's."""

    rule:
        name:
            f"fig_{name}"
        input:
            **{key: RESULTS / table for key, table in figure["inputs"].items()},
            script=SCRIPTS / f"fig_{name}.py",
            lib=SCRIPTS / "figlib.py",
        output:
            png=figure_output(name, figure),
            svg=FIGURE_DIR[figure["scope"]] / f"{name}.svg",
        log:
            FIGURE_LOG[figure["scope"]] / f"{name}.log",
        localrule: True  # plotting is light: drawn by Snakemake itself, never a cluster job (profiles/slurm)
        conda:
            ENV
        params:
            **figure_params(figure),
        shell:
            figure_shell(name, figure)


for _name, _figure in figure_scripts().items():
    figure_rule(_name, _figure)
