"""Issue 13, items 2 and 3: every run's files are targets of the DAG (a vanished run is retrained), and a
run whose files were edited or damaged after it finished is never aggregated (actlab.integrity's
SHA256SUMS; actlab.aggregate's field checks; the pipeline's startup check retrains it)."""

import json
import math
import shutil
import subprocess

import pandas as pd
import pytest
from conftest import TEST_RESULTS, planned_run_dir, runs_of
from test_aggregate import dead_table, make_run, seal
from test_pipeline import ROOT, TEST_SWEEP, copy_repo, job_counts, snakemake

from actlab import aggregate, integrity

# -----------------------------------------------------------------------------
# the integrity record


def test_a_finished_run_verifies_and_sha256sum_agrees(tmp_path):
    run = make_run(tmp_path, "relu", 0, dead=dead_table())
    integrity.verify(run)  # no error
    listed = [line.split()[1] for line in (run / "SHA256SUMS").read_text().splitlines()]
    assert listed == ["config.yaml", "metrics.csv", "dead_units.csv", "grad_flow.csv", "summary.json"]
    if shutil.which("sha256sum"):  # the record is coreutils' format: checkable by hand
        res = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=run, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr


def _edit_summary(run):
    s = json.loads((run / "summary.json").read_text())
    s["test_acc"] = 0.99
    (run / "summary.json").write_text(json.dumps(s, indent=2, sort_keys=True) + "\n")


def _edit_dead(run):  # a plausible hand edit: the last epoch's dead fraction of act1 set to 0.9
    df = pd.read_csv(run / "dead_units.csv")
    df.loc[(df["epoch"] == 2) & (df["layer"] == "act1") & (df["metric"] == "dead_fraction"), "value"] = 0.9
    df.to_csv(run / "dead_units.csv", index=False)


TAMPERS = {  # what is done to a finished run -> what the one line must say
    "metrics.csv deleted": (lambda run: (run / "metrics.csv").unlink(), "metrics.csv is missing"),
    "test_acc edited": (_edit_summary, "summary.json does not match its SHA-256 in SHA256SUMS"),
    "dead fraction edited": (_edit_dead, "dead_units.csv does not match its SHA-256 in SHA256SUMS"),
    "grad_flow.csv truncated": (
        lambda run: (run / "grad_flow.csv").write_text("step,epoch\n"),
        "grad_flow.csv does not match",
    ),
    "SHA256SUMS deleted": (lambda run: (run / "SHA256SUMS").unlink(), "no SHA256SUMS"),
    "SHA256SUMS garbled": (
        lambda run: (run / "SHA256SUMS").write_text("not a checksum\n"),
        "SHA256SUMS line 1 is malformed",
    ),
    "probe table added later": (
        lambda run: dead_table().to_csv(run / "dead_units.csv", index=False),
        "dead_units.csv not listed in SHA256SUMS",
    ),
}


@pytest.mark.parametrize("tamper", TAMPERS)
def test_a_damaged_run_fails_verify_and_aggregation_names_it(tmp_path, capsys, tamper):
    edit, message = TAMPERS[tamper]
    root = tmp_path / "runs"
    make_run(root, "relu", 0, dead=dead_table())
    run = make_run(root, "gelu", 1, dead=None if tamper == "probe table added later" else dead_table())
    edit(run)
    with pytest.raises(integrity.IntegrityError, match=message.split(" (")[0]):
        integrity.verify(run)
    out = tmp_path / "out"
    assert aggregate.main([str(root), "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: run {run}: ") and message in err[0], err
    assert not out.exists()  # nothing written, not even partially


# -----------------------------------------------------------------------------
# types and ranges of what a run wrote (a valid SHA256SUMS: as if the trainer itself had written it)

BAD_SUMMARIES = [  # (summary fields, the one line's reason)
    ({"test_acc": 7.5}, "test_acc = 7.5 is not a number in [0, 1] or NaN"),
    ({"test_acc": "0.9"}, 'test_acc = "0.9" is not a number in [0, 1] or NaN'),
    ({"test_acc": None}, "test_acc = null is not"),
    ({"seed": -1}, "seed = -1 is not an integer in 0..2**32-1"),
    ({"seed": 2**32}, "seed = 4294967296 is not an integer"),
    ({"seed": 1.0}, "seed = 1.0 is not an integer"),
    ({"epochs": -1}, "epochs = -1 is not an integer >= 0"),
    ({"epochs": True}, "epochs = true is not an integer"),
    ({"diverged": "no"}, 'diverged = "no" is not true or false'),
    ({"optimizer": 3}, "optimizer = 3 is not a non-empty string"),
    ({"init": ""}, 'init = "" is not a non-empty string'),
    ({"train_seconds": float("inf")}, "train_seconds = Infinity is not a finite number >= 0"),
    ({"test_loss": -0.1}, "test_loss = -0.1 is not a number >= 0 or NaN"),
    ({"versions": {"torch": 2}}, 'versions = {"torch": 2} is not an object of strings'),
    ({"colour": "blue"}, "unknown field(s) colour"),
    ({"max_epochs": 1}, "epochs = 2 exceeds max_epochs = 1"),
    ({"task": "classification", "test_acc": float("nan")}, "test_acc is NaN for a classification run"),
    ({"task": "regression"}, "test_acc = 0.9 for a regression run"),
]


@pytest.mark.parametrize("fields, message", BAD_SUMMARIES, ids=[str(f) for f, _ in BAD_SUMMARIES])
def test_a_summary_field_of_the_wrong_type_or_range_is_refused(tmp_path, capsys, fields, message):
    root = tmp_path / "runs"
    make_run(root, "relu", 0)
    fields = dict(fields)
    run = make_run(root, fields.pop("activation", "tanh"), fields.pop("seed", 0), **fields)
    integrity.verify(run)  # the record is intact: only the field check can refuse it
    assert aggregate.main([str(root), "--out-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: run {run}: summary.json: ") and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_nan_accuracy_of_a_regression_or_diverged_run_is_valid(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "relu", 0, task="regression", test_acc=math.nan, best_val_acc=math.nan)
    make_run(root, "relu", 1, task="classification", diverged=True, test_acc=math.nan, test_loss=math.inf)
    assert aggregate.main([str(root), "--out-dir", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize(
    "file, edit, message",
    [
        (
            "dead_units.csv",
            lambda df: df.assign(value=df["value"].where(df["metric"] != "dead_fraction", 1.5)),
            "dead_fraction = 1.5 (row 2) is not a number in [0, 1]",
        ),
        (
            "dead_units.csv",
            lambda df: df.assign(value=df["value"].astype(object).where(df["metric"] != "dormant_fraction", "x")),
            "dormant_fraction = 'x' (row 3) is not a number in [0, 1]",
        ),
        ("metrics.csv", lambda df: df.assign(val_acc=[0.4, 70.0]), "val_acc = 70.0 (row 3) is not a number in [0, 1]"),
    ],
)
def test_a_fraction_out_of_range_in_a_table_is_refused(tmp_path, capsys, file, edit, message):
    run = make_run(tmp_path / "runs", "relu", 0, dead=dead_table())
    edit(pd.read_csv(run / file)).to_csv(run / file, index=False)
    seal(run)
    assert aggregate.main([str(run), "--out-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: run {run}: {file}: {message}"


def test_the_schema_covers_every_field_the_trainers_write(compose):
    """make_summary (and the vectorised trainer's extra field) write only fields FIELDS knows, in range."""
    from actlab.train import make_summary

    for data in ("digits", "synthetic"):
        cfg = compose(f"data={data}", "run_dir=runs/x")
        task = "regression" if data == "synthetic" else "classification"
        hist = [{"epoch": 1, "val_loss": 0.5, **({"val_acc": 0.8} if task == "classification" else {})}]
        test = {"test_loss": 0.4, **({"test_acc": 0.75} if task == "classification" else {})}
        s = make_summary(cfg, task, hist, test, False, 1.5, 1000, "cpu")
        s["vectorized"] = {"k": 2, "job_train_seconds": 3.0}
        assert set(s) <= set(aggregate.FIELDS), set(s) - set(aggregate.FIELDS)
        assert aggregate.summary_problem(s) is None, (data, aggregate.summary_problem(s))


# -----------------------------------------------------------------------------
# the pipeline: a vanished run is retrained, a damaged one is named and retrained (item 2, item 3)


def test_every_run_is_a_target_by_its_summary(tmp_path):
    """Dry run of an empty study: each run's summary.json (written last) is an output of its train job
    and a target; its other files are not declared (their integrity record stands for them:
    test_a_vanished_or_damaged_run_is_retrained), so the terminal does not list every run file per job."""
    res = snakemake(
        "-n",
        "--configfile",
        TEST_SWEEP,
        "--directory",
        str(tmp_path),
        "-s",
        str(ROOT / "Snakefile"),
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    run = planned_run_dir(res.stdout, "gelu", 0)
    assert f"{run}/summary.json" in res.stdout
    for name in ("config.yaml", "metrics.csv", "dead_units.csv", "grad_flow.csv", "SHA256SUMS"):
        assert f"{run}/{name}" not in res.stdout, name


@pytest.mark.slow
def test_a_vanished_or_damaged_run_is_retrained(tmp_path):
    repo = copy_repo(tmp_path)
    until = ["--cores", "2", "--configfile", TEST_SWEEP, "--until", "aggregate"]
    res = snakemake(*until, cwd=repo)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    runs = runs_of(repo)

    shutil.rmtree(runs / "gelu" / "seed0")  # item 2: a run vanishes from a finished study
    res = snakemake("-n", *until, cwd=repo)
    assert res.returncode == 0, res.stdout + res.stderr
    assert job_counts(res.stdout).get("train") == 1 and "Nothing to be done" not in res.stdout, res.stdout
    assert f"{(runs / 'gelu' / 'seed0').relative_to(repo)}/summary.json" in res.stdout

    summary = runs / "tanh" / "seed1" / "summary.json"  # item 3: a hand-edited result
    s = json.loads(summary.read_text())
    s["test_acc"] = 0.99
    summary.write_text(json.dumps(s, indent=2, sort_keys=True) + "\n")
    (runs / "relu" / "seed0" / "metrics.csv").unlink()  # a file the rules do not declare vanishes
    res = snakemake(*until, cwd=repo)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rejected = [ln for ln in res.stderr.splitlines() if ln.startswith("actlab: rejected run")]
    assert sorted(rejected) == [
        f"actlab: rejected run {(runs / 'relu' / 'seed0').relative_to(repo)}: metrics.csv is missing (listed "
        "in SHA256SUMS); moved its summary.json to summary.json.rejected, it will be retrained",
        f"actlab: rejected run {(runs / 'tanh' / 'seed1').relative_to(repo)}: summary.json does not match "
        "its SHA-256 in SHA256SUMS (edited or damaged after the run finished); moved its "
        "summary.json to summary.json.rejected, it will be retrained",
    ], res.stderr[-3000:]
    assert (summary.parent / "summary.json.rejected").is_file()
    assert (runs / "relu" / "seed0" / "metrics.csv").is_file()  # retrained
    assert json.loads(summary.read_text())["test_acc"] != 0.99  # retrained, the edit gone
    table = pd.read_csv(repo / TEST_RESULTS / "summary.csv")
    assert len(table) == 12 and 0.99 not in table["test_acc"].tolist()  # 2 experiments x 3 activations x 2 seeds
    for run in table["run_dir"]:
        integrity.verify(repo / run)
    res = snakemake("-n", *until, cwd=repo)
    assert res.returncode == 0 and job_counts(res.stdout) == {}, res.stdout  # complete again: no job
