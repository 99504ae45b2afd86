"""The Snakemake pipeline: sweep-config validation, lint, and the real DAG end to end on the tiny
sweep (conf/sweep/test.yaml) in a temporary copy of the repository."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TEST_MAIN, TEST_RESULTS, TEST_SUBSET, runs_of

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TEST_SWEEP = "conf/sweep/test.yaml"
# the rules that compute or draw something from the training runs
RUN_RULES = {
    "train",
    "aggregate",
    "statistics",
    "fig_learning_curves",
    "fig_accuracy",
    "fig_dead_units",
    "fig_grad_flow",
    "fig_accuracy_vs_dead",
    "fig_across_depth",
}


def copy_repo(dest: Path) -> Path:
    """The working tree as a fresh clone would have it: tracked and untracked-but-not-ignored files
    (no results/, .snakemake/, .venv/, paper/_build/)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def snakemake(*args, cwd, timeout=600):
    env = {**os.environ, "ACTLAB_CONF": str(Path(cwd) / "conf"), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run: {rule: count}."""
    counts, table = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            table = True
        elif table:
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m and m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
            elif line.strip().startswith("total"):
                break
    return counts


# -----------------------------------------------------------------------------
# the sweep configs


def test_sweep_configs_cover_what_the_study_needs():
    from actlab.activations import NAMES

    conf_names = sorted(p.stem for p in (ROOT / "conf" / "activation").glob("*.yaml"))
    assert conf_names == sorted(NAMES)  # the pipeline checks names against conf/activation/
    default = yaml.safe_load((ROOT / "conf" / "sweep" / "default.yaml").read_text())
    assert set(default["activations"]) <= set(NAMES)  # a sweep may study a subset of the registry
    # the study's design (issue: the study must be able to answer its questions): >= 10 seeds, the main
    # experiment on MNIST-1D at two depths, claim (a) on real MNIST digits, learning rates selected
    assert len(default["seeds"]) >= 10 and default["lr_selection"]["grid"]
    assert [(e["dataset"], e["model"]) for e in default["experiments"]] == [
        ("mnist1d", "mlp"),
        ("mnist1d", "mlp"),
        ("mnist_subset", "mlp"),
    ]
    depths = [
        next((int(o.split("=")[1]) for o in e["overrides"] if o.startswith("model.depth=")), 2)
        for e in default["experiments"][:2]
    ]
    assert depths[0] <= 2 and depths[1] >= 8
    paper = yaml.safe_load((ROOT / "conf" / "sweep" / "paper.yaml").read_text())
    assert set(paper["activations"]) <= set(NAMES) and len(paper["seeds"]) >= 10
    assert {(e["dataset"], e["model"]) for e in paper["experiments"]} == {
        ("mnist1d", "mlp"),
        ("mnist1d", "cnn"),
        ("mnist", "mlp"),
        ("fashion_mnist", "mlp"),
        ("cifar10", "cnn"),
    }
    assert paper["resources"]["gpu"] == 1
    assert set(paper) == set(default)  # every key set: --configfile merges over the default sweep


BAD_CONFIGS = [
    ("activations: [relu, swish]", "activations: unknown activation 'swish'; valid: elu, gelu"),
    ("activations: []", "activations: [] should be non-empty"),
    ("seeds: [0, 1.5]", "seeds.1: 1.5 is not of type 'integer'"),
    ("seeds: [0, 1.0]", "seeds must be integers"),
    ("experiments: [{dataset: imagenet, model: mlp}]", "unknown data 'imagenet'"),
    ("overrides: [seed=3]", "sets 'seed', which the pipeline sets itself"),
    ("overrides: [trainer.max_epoch=3]", "do not compose: Could not override 'trainer.max_epoch'"),
    ("baseline: gelu\nactivations: [relu, tanh]", "baseline 'gelu' is not among the activations"),
    ("epochs: 3", "'epochs' was unexpected"),
    ("group_by: seed", "group_by: 'seed' is not one of ['experiment', 'activation', 'run']"),
    ("multi_seed: false", "multi_seed was replaced by group_by: write group_by: run"),
    ("overrides: ['activations=[relu]']", "sets 'activations', which the pipeline sets itself"),
]


@pytest.mark.parametrize(
    "text, message", BAD_CONFIGS, ids=[c[0].split(":")[0] + str(i) for i, c in enumerate(BAD_CONFIGS)]
)
def test_a_bad_sweep_config_fails_before_any_job(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "\n")
    res = snakemake("-n", "--configfile", str(bad), cwd=ROOT, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "invalid sweep config" in out and message in out, out
    assert "Job stats" not in out  # failed while reading the config, before planning any job


def test_every_shipped_sweep_plans(tmp_path):
    paper = yaml.safe_load((ROOT / "conf" / "sweep" / "paper.yaml").read_text())
    paper_train = len(paper["experiments"]) * len(paper["activations"])  # group_by: activation
    assert paper["group_by"] == "activation"
    default = yaml.safe_load((ROOT / "conf" / "sweep" / "default.yaml").read_text())
    n_default = len(default["experiments"])
    assert default.get("group_by", "experiment") == "experiment"  # one training job per experiment
    for sweep, rules in (
        ("conf/sweep/default.yaml", {"train": n_default, "fig_accuracy": n_default, "book": 1}),
        ("conf/sweep/paper.yaml", {"download": 3, "train": paper_train, "fig_accuracy": len(paper["experiments"])}),
    ):
        res = snakemake(
            "-n",
            "--configfile",
            sweep,
            "--directory",
            str(tmp_path),
            "-s",
            str(ROOT / "Snakefile"),
            cwd=ROOT,
            timeout=120,
        )
        counts = job_counts(res.stdout)
        assert res.returncode == 0, res.stdout + res.stderr
        assert {k: counts.get(k) for k in rules} == rules


@pytest.mark.parametrize("group_by, jobs", [("experiment", 2), ("activation", 6), ("run", 12)])
def test_group_by_sets_the_training_jobs(tmp_path, group_by, jobs):
    """The tiny sweep (2 experiments x 3 activations x 2 seeds): one job per experiment / activation /
    run; every run's summary.json is some job's output either way, so the rest of the DAG is the same."""
    res = snakemake(
        "-n",
        "-p",
        "--quiet",  # replaces the profile's `quiet: [rules]`, which hides the commands
        "host",
        "--configfile",
        TEST_SWEEP,
        "--config",
        f"group_by={group_by}",
        "--directory",
        str(tmp_path),
        "-s",
        str(ROOT / "Snakefile"),
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    counts = job_counts(res.stdout)
    assert counts["train"] == jobs and counts["aggregate"] == 1, counts
    commands = [ln for ln in res.stdout.splitlines() if "-m actlab.train" in ln and "/logs/train/" in ln]
    assert len(commands) == jobs
    if group_by == "experiment":  # every activation x seed of an experiment in one process, one run dir each
        for experiment in (TEST_MAIN, TEST_SUBSET):
            (command,) = [c for c in commands if f"/logs/train/{experiment}/" in c]
            assert "'activations=[relu,gelu,tanh]' 'seeds=[0,1]'" in command, command
            assert re.search(
                rf"run_dir=results/runs/{experiment}/[0-9a-f]{{8}}/\$\{{activation.name\}}/seed\$\{{seed\}}", command
            )
    for experiment in (TEST_MAIN, TEST_SUBSET):  # the same declared outputs whatever the grouping
        runs = set(re.findall(rf"results/runs/{experiment}/[0-9a-f]{{8}}/\w+/seed\d/summary.json", res.stdout))
        assert len(runs) == 6, runs


def test_lint_is_clean():
    res = snakemake("--lint", cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Lints for" not in res.stdout + res.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["snakefmt", "--check", "Snakefile", "workflow/rules"],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_code_is_linted_and_formatted(command):
    """What `make lint` and the pre-commit hooks check (pyproject.toml [tool.ruff], [tool.snakefmt])."""
    tool = Path(sys.executable).parent / command[0]
    if not tool.exists():
        pytest.skip(f"{command[0]} is not installed in this environment (make setup installs it)")
    res = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


# -----------------------------------------------------------------------------
# the real DAG, end to end


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return copy_repo(tmp_path_factory.mktemp("repo"))


@pytest.mark.slow
def test_end_to_end(repo):
    sweep = yaml.safe_load((repo / TEST_SWEEP).read_text())
    acts, seeds = sweep["activations"], sweep["seeds"]
    experiments = [TEST_MAIN, TEST_SUBSET]
    assert [f"{e['dataset']}_{e['model']}" for e in sweep["experiments"]] == experiments

    # 1. one training job fails (a file sits where its Hydra job dir goes): the others finish, intact
    res = snakemake("-n", "--configfile", TEST_SWEEP, cwd=repo)
    key = re.search(rf"results/runs/{TEST_MAIN}/([0-9a-f]{{8}})/", res.stdout).group(1)
    runs = repo / "results" / "runs" / TEST_MAIN / key
    subset_key = re.search(rf"results/runs/{TEST_SUBSET}/([0-9a-f]{{8}})/", res.stdout).group(1)
    subset_runs = repo / "results" / "runs" / TEST_SUBSET / subset_key
    broken = repo / TEST_RESULTS / "logs" / "train" / TEST_MAIN / key / "gelu.hydra"
    broken.parent.mkdir(parents=True)
    broken.write_text("not a directory\n")
    res = snakemake("--cores", "2", "--keep-going", "--configfile", TEST_SWEEP, cwd=repo)
    assert res.returncode != 0
    assert "Error in rule train" in res.stdout + res.stderr, res.stdout + res.stderr
    for act in acts:
        for seed in seeds:
            summary = runs / act / f"seed{seed}" / "summary.json"
            if act == "gelu":
                assert not summary.exists()
            else:
                assert json.loads(summary.read_text())["seed"] == seed
            # the other experiment's gelu job is another job: it finished
            assert json.loads((subset_runs / act / f"seed{seed}" / "summary.json").read_text())["seed"] == seed
    assert not (repo / TEST_RESULTS / "summary.csv").exists()

    # 2. the rerun redoes only what is missing: the failed group and what depends on it
    broken.unlink()
    res = snakemake("-n", "--configfile", TEST_SWEEP, cwd=repo)
    counts = job_counts(res.stdout)
    assert counts.get("train") == 1 and "depth_study" not in counts and "fig_activations" not in counts, res.stdout
    res = snakemake("--cores", "2", "--configfile", TEST_SWEEP, cwd=repo)
    assert res.returncode == 0, res.stdout + res.stderr

    # 3. the outputs
    table = pd.read_csv(repo / TEST_RESULTS / "summary.csv")
    assert len(table) == len(experiments) * len(acts) * len(seeds)
    assert sorted(zip(table["experiment"], table["activation"], table["seed"])) == sorted(
        (e, a, s) for e in experiments for a in acts for s in seeds
    )
    assert set(zip(table["experiment"], table["dataset"])) == {(TEST_MAIN, "mnist1d"), (TEST_SUBSET, "mnist_subset")}
    assert {"final_dead_fraction", "final_dormant_fraction", "final_saturated_fraction"} <= set(table.columns)
    assert len(pd.read_parquet(repo / TEST_RESULTS / "summary.parquet")) == len(table)
    for curve in ("metrics", "dead_units", "grad_flow"):
        assert not pd.read_parquet(repo / TEST_RESULTS / "curves" / f"{curve}.parquet").empty
    vs = pd.read_csv(repo / TEST_RESULTS / "stats" / "vs_relu.csv")
    assert sorted(zip(vs["experiment"], vs["activation"])) == sorted(
        (e, a) for e in experiments for a in acts if a != "relu"
    )
    accuracy = pd.read_csv(repo / TEST_RESULTS / "stats" / "accuracy.csv").query("metric == 'test_acc'")
    assert len(accuracy) == len(experiments) * len(acts)
    assert not pd.read_csv(repo / TEST_RESULTS / "stats" / "compute.csv").empty
    assert not pd.read_csv(repo / TEST_RESULTS / "depth" / "born_dead.csv").empty
    figures = repo / TEST_RESULTS / "figures"
    names = [
        figures / "activations",
        figures / "depth",
        *(
            figures / e / n
            for e in experiments
            for n in ("learning_curves", "accuracy", "dead_units", "grad_flow", "accuracy_vs_dead")
        ),
        figures / "mnist1d-mlp" / "across_depth",
        figures / "mnist_subset-mlp" / "across_depth",
    ]
    for stem in names:
        png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        script = f"workflow/scripts/fig_{stem.name}.py"
        assert f"made by {script}".encode() in png.read_bytes()  # PNG metadata (tEXt)
        assert f"made by {script}" in svg.read_text()  # metadata (dc:description); no footer in the picture
    book = repo / TEST_RESULTS / "book" / "html" / "index.html"  # a named sweep's book: beside its results
    assert book.is_file() and not (repo / "paper" / "_build").exists()
    logs = repo / TEST_RESULTS / "logs"
    assert (logs / "aggregate.log").is_file() and (logs / "book.log").is_file()
    assert list((repo / TEST_RESULTS / "benchmarks" / "train").rglob("*.tsv"))

    # 4. right after a finished run there is nothing to do
    res = snakemake("-n", "--configfile", TEST_SWEEP, cwd=repo)
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr, res.stdout

    # 5. a changed setting reruns exactly what it affects: the depth grid -> no training, no aggregation
    changed = yaml.safe_load((repo / TEST_SWEEP).read_text())
    changed["depth"]["trials"] += 1
    (repo / "changed.yaml").write_text(yaml.safe_dump(changed))
    counts = job_counts(snakemake("-n", "--configfile", "changed.yaml", cwd=repo).stdout)
    assert {"depth_study", "fig_depth"} <= set(counts) and not set(counts) & RUN_RULES, counts
    # ... and one experiment's override -> every training job of that experiment (not the other's),
    # nothing of the depth study
    changed = yaml.safe_load((repo / TEST_SWEEP).read_text())
    changed["experiments"][0]["overrides"].append("optimizer.lr=0.002")
    (repo / "changed.yaml").write_text(yaml.safe_dump(changed))
    counts = job_counts(snakemake("-n", "--configfile", "changed.yaml", cwd=repo).stdout)
    assert counts.get("train") == len(acts) and not {"depth_study", "fig_depth", "fig_activations"} & set(counts)
    # 6. the report (before step 7 makes a figure out of date), with the figures in it
    res = snakemake("--report", "report.html", "--configfile", TEST_SWEEP, cwd=repo, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    html = (repo / "report.html").read_text()
    for stem in names:
        assert stem.with_suffix(".png").name in html

    # 7. restyling a figure redraws that figure (and the book) only
    script = repo / "workflow" / "scripts" / "fig_accuracy.py"
    script.write_text(script.read_text() + "\n")
    counts = job_counts(snakemake("-n", "--configfile", TEST_SWEEP, cwd=repo).stdout)
    assert "fig_accuracy" in counts and not set(counts) & (RUN_RULES - {"fig_accuracy"}), counts

    # 8. editing the training code retrains (its fingerprint is a param of `train`); editing only a
    # docstring or a comment does not; the depth study (other code) is not touched either way
    script.write_text(script.read_text().rstrip("\n") + "\n")  # undo step 7's edit (content, not mtime)
    probes = repo / "src" / "actlab" / "probes.py"
    text = probes.read_text()
    probes.write_text(text.replace('"""', '"""A reworded docstring. ', 1) + "\n# a comment\n")
    counts = job_counts(snakemake("-n", "--configfile", TEST_SWEEP, cwd=repo).stdout)
    assert "train" not in counts and "depth_study" not in counts, counts
    probes.write_text(text + "\nEDITED = True\n")
    res = snakemake("-n", "--configfile", TEST_SWEEP, cwd=repo)
    counts = job_counts(res.stdout)
    assert counts.get("train") == len(experiments) * len(acts) and "depth_study" not in counts, (
        counts,
        res.stdout[-3000:],
        res.stderr[-3000:],
    )
    probes.write_text(text)

    # 9. sweeps side by side: a second sweep (another name, the main experiment alone at another depth)
    # trains its own runs and writes its own tables and book; the first is left exactly as it was
    assert snakemake("--cores", "2", "--configfile", TEST_SWEEP, cwd=repo).returncode == 0  # steps 7-8's mtimes
    first = {p: p.read_bytes() for p in (repo / TEST_RESULTS).rglob("*") if p.is_file() and "logs" not in p.parts}
    first_runs = {p: p.stat().st_mtime_ns for r in (runs, subset_runs) for p in r.rglob("*") if p.is_file()}
    deep = yaml.safe_load((repo / TEST_SWEEP).read_text())
    deep["name"] = "deep"
    deep["experiments"] = deep["experiments"][:1]  # one experiment is enough to tell the sweeps apart
    deep["experiments"][0]["overrides"].append("model.depth=3")
    (repo / "deep.yaml").write_text(yaml.safe_dump(deep))
    res = snakemake("--cores", "2", "--configfile", "deep.yaml", cwd=repo)
    assert res.returncode == 0, res.stdout + res.stderr
    deep_table = pd.read_csv(repo / "results" / "sweeps" / "deep" / "summary.csv")
    assert set(deep_table["depth"]) == {3} and len(deep_table) == len(acts) * len(seeds)
    assert set(deep_table["experiment"]) == {TEST_MAIN}
    assert (repo / "results" / "sweeps" / "deep" / "book" / "html" / "index.html").is_file()
    assert runs.name not in {Path(p).parts[3] for p in deep_table["run_dir"]}  # its own run dirs (another key)
    res = snakemake("-n", "--configfile", TEST_SWEEP, cwd=repo)
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr, res.stdout
    assert {p: p.stat().st_mtime_ns for r in (runs, subset_runs) for p in r.rglob("*") if p.is_file()} == first_runs
    changed_files = [p for p, b in first.items() if not p.is_file() or p.read_bytes() != b]
    assert not changed_files, changed_files  # tables, figures and book of the first sweep untouched
    # a sweep called default with other settings (--config) is not the default sweep: its own directory
    res = snakemake("-n", "--config", "overrides=[model.depth=3]", cwd=repo)
    assert re.search(
        r"it is sweep 'default_[0-9a-f]{8}', results in results/sweeps/default_[0-9a-f]{8}/", res.stderr
    ), res.stderr


@pytest.mark.slow
def test_one_job_per_experiment_writes_every_run(tmp_path):
    """group_by=experiment (the default sweep's): one process per experiment trains every activation x
    seed and writes one complete run directory each, as separate jobs would."""
    repo = copy_repo(tmp_path)
    args = ["--configfile", TEST_SWEEP, "--config", "group_by=experiment"]
    res = snakemake(f"{TEST_RESULTS}/summary.csv", "--cores", "2", *args, cwd=repo)
    assert res.returncode == 0, res.stdout + res.stderr
    sweep = yaml.safe_load((repo / TEST_SWEEP).read_text())
    experiments = {TEST_MAIN: "mnist1d", TEST_SUBSET: "mnist_subset"}
    assert job_counts(res.stdout + res.stderr)["train"] == len(experiments) == len(sweep["experiments"])
    for experiment, dataset in experiments.items():
        runs = runs_of(repo, experiment)
        for act in sweep["activations"]:
            for seed in sweep["seeds"]:
                run = runs / act / f"seed{seed}"
                summary = json.loads((run / "summary.json").read_text())
                assert (summary["dataset"], summary["activation"], summary["seed"]) == (dataset, act, seed)
                # each seed draws its own split (data.split_seed=${seed}) and each activation may have its
                # own lr: still one vectorised part of every run (<= vectorize_max_k), each model on its split
                assert summary["data_provenance"]["split_seed"] == seed
                assert summary["vectorized"]["k"] == len(sweep["activations"]) * len(sweep["seeds"])
                for name in ("metrics.csv", "dead_units.csv", "grad_flow.csv", "config.yaml"):
                    assert (run / name).is_file(), run / name
                assert yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())[:2] == [
                    f"activation={act}",
                    f"seed={seed}",
                ]
        # no job dirs among the runs (lr_selection/: the sweep's learning-rate selection runs)
        assert sorted(p.name for p in runs.iterdir() if p.name != "lr_selection") == sorted(sweep["activations"])
        assert (repo / TEST_RESULTS / "logs" / "train" / experiment / f"{runs.name}.hydra").is_dir()
        assert (repo / TEST_RESULTS / "benchmarks" / "train" / experiment / f"{runs.name}.tsv").is_file()
    n_runs = len(experiments) * len(sweep["activations"]) * len(sweep["seeds"])
    assert len(pd.read_csv(repo / TEST_RESULTS / "summary.csv")) == n_runs
    res = snakemake(f"{TEST_RESULTS}/summary.csv", "-n", *args, cwd=repo)
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout
