"""Issue 13, items 4 and 5: the sweep runs the training CLI's own value checks before any job; and the
smaller guards: experiments without overrides, the seed range, trust-on-first-use downloads that
fail their format check, divergence by explosion, the run-dir lock, the book swapped in whole, empty
or blocked run dirs, a full disk, directory fsync, retries that scale resources, the torch build
chosen by `make setup`. docs/reliability.md says how each is defended."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TEST_RESULTS, planned_run_dir, run_cli
from test_download import IDX_NAMES, idx_cfg, make_mnist, sha256
from test_pipeline import copy_repo, snakemake
from test_reliability import QUICK, one_line_error, refused_in_process

from actlab import atomic, download, train
from actlab.data import DataError
from actlab.losses import DIVERGENCE_FACTOR, chance_loss, diverged

# -----------------------------------------------------------------------------
# item 4: a sweep value the training CLI refuses fails the sweep check, before any job (the bad file
# merges over conf/sweep/default.yaml: a global override fails in its first experiment, mnist1d_mlp)

BAD_SWEEP_VALUES = [
    (
        # the default sweep's experiments set max_epochs themselves: a sweep of one experiment that does not
        "overrides: [trainer.max_epochs=0]\nexperiments: [{dataset: digits, model: mlp}]",
        "experiment digits_mlp: trainer.max_epochs must be an integer >= 1, got 0",
    ),
    ("overrides: [optimizer.lr=nan]", "experiment mnist1d_mlp: optimizer.lr must be > 0, got nan"),
    (
        "experiments: [{dataset: digits, model: mlp, overrides: [model.width=0]}]",
        "experiment digits_mlp: model.width must be an integer >= 1, got 0",
    ),
    (
        "overrides: [vectorize_max_k=-3]",
        "experiment mnist1d_mlp: vectorize_max_k must be an integer >= 1 or null, got -3",
    ),
    (
        "overrides: [trainer.checkpoint_every_n_epochs=-1]",
        "experiment mnist1d_mlp: trainer.checkpoint_every_n_epochs must be an integer >= 0",
    ),
    ("seeds: [0, 4294967296]", "seeds.1: 4294967296 is greater than the maximum of 4294967295"),
    (
        "overrides: [probes.dead_units.every_n_epochs=0]",
        "experiment mnist1d_mlp: probes.dead_units.every_n_epochs must be an integer >= 1",
    ),
]


@pytest.mark.parametrize(
    "text, message", BAD_SWEEP_VALUES, ids=[t.split(":")[0] + str(i) for i, (t, _) in enumerate(BAD_SWEEP_VALUES)]
)
def test_sweep_value_the_cli_refuses_fails_before_any_job(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "\n")
    res = snakemake("-n", "--configfile", str(bad), cwd=ROOT, timeout=180)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    errors = [ln for ln in out.splitlines() if "invalid sweep config" in ln]
    assert len(errors) == 1 and message in errors[0], out
    assert "Job stats" not in out


def test_experiment_without_overrides_plans(tmp_path):
    """The schema allows leaving `overrides:` out of an experiment (default [])."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text("experiments: [{dataset: digits, model: mlp}]\n")
    res = snakemake("-n", "--configfile", str(sweep), cwd=ROOT, timeout=180)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "KeyError" not in res.stderr


def test_activation_parameter_with_one_job_per_activation_plans():
    """...and checked per activation when each job trains one: leaky_relu has the parameter."""
    res = snakemake(
        "-n",
        "--config",
        "activations=[leaky_relu]",
        "baseline=leaky_relu",
        "group_by=activation",
        "overrides=[activation.negative_slope=0.1]",
        cwd=ROOT,
        timeout=180,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]


# -----------------------------------------------------------------------------
# seeds are 0..2**32-1 everywhere (numpy's seed range)


@pytest.mark.parametrize(
    "args, message",
    [
        (["seed=-1"], "seed must be an integer in 0..4294967295"),
        (["seed=4294967296"], "seed must be an integer in 0..4294967295"),
        (["seeds=[0,4294967296]"], "seeds must be integers in 0..4294967295"),
    ],
)
def test_seed_out_of_range_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys, args, message):
    assert message in refused_in_process(tmp_path, monkeypatch, capsys, [*QUICK, "run_dir=runs/seed${seed}", *args])


def test_largest_seed_trains(tmp_path):
    p = run_cli(
        "seed=4294967295",
        "trainer.max_epochs=1",
        "trainer.threads=1",
        "trainer.progress=quiet",
        f"run_dir={tmp_path}/r",
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "r" / "summary.json").is_file()


# -----------------------------------------------------------------------------
# trust on first use: a truncated download (no Content-Length) is never trusted


class NoLengthHandler(BaseHTTPRequestHandler):
    """Serves the first half of a file, no Content-Length, then closes: urllib sees a clean end."""

    def do_GET(self):
        body = self.server.files[self.path]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.server.cut else body)
        self.server.cut = False
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def no_length_server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), NoLengthHandler)
    srv.files, srv.cut = {}, True
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_truncated_tofu_download_is_not_recorded_and_a_rerun_recovers(no_length_server, tmp_path):
    arrays, files = make_mnist()
    for name, body in files.items():
        no_length_server.files[f"/mnist/{name}"] = body
    cfg = idx_cfg(no_length_server, tmp_path, files, pin=False)  # sha256: null everywhere
    name = IDX_NAMES["train_images"]
    with pytest.raises(DataError) as e:  # the first file arrives cut short
        download.load_idx_dataset(cfg)
    assert name in str(e.value) and "corrupt or truncated gzip data" in str(e.value)
    assert "not trusted" in str(e.value)
    assert name not in download.read_sums(tmp_path)  # no hash recorded for the truncated file
    assert not (tmp_path / name).exists() and (tmp_path / f"{name}.bad").exists()
    (x, y), _ = download.load_idx_dataset(cfg)  # the rerun fetches the whole file and trusts it
    assert (x == arrays["train_images"]).all()
    assert download.read_sums(tmp_path)[name] == sha256(files[name])


def test_tofu_idx_with_wrong_size_is_not_trusted(tmp_path, no_length_server):
    """A gzip-valid file whose IDX header promises more bytes than it holds (the format's own check)."""
    _, files = make_mnist()
    name = IDX_NAMES["train_labels"]
    raw = gzip.decompress(files[name])
    files[name] = gzip.compress(raw[:-5])
    for n, body in files.items():
        no_length_server.files[f"/mnist/{n}"] = body
    no_length_server.cut = False
    cfg = idx_cfg(no_length_server, tmp_path, files, pin=False)
    with pytest.raises(DataError, match="IDX header says shape"):
        download.load_idx_dataset(cfg)
    assert name not in download.read_sums(tmp_path)


# -----------------------------------------------------------------------------
# divergence: non-finite, or > 100x the chance loss


def test_divergence_rule():
    y = torch.arange(100) % 10  # balanced 10 classes: chance = ln 10
    chance = chance_loss("classification", y, 10)
    assert chance == pytest.approx(2.302585, abs=1e-6)
    assert chance_loss("regression", torch.tensor([[0.0], [2.0]]), 1) == pytest.approx(1.0)
    assert not diverged(3.0, chance) and not diverged(50.0, chance)
    assert diverged(DIVERGENCE_FACTOR * chance * 1.01, chance) and diverged(1e21, chance)
    assert diverged(float("nan"), chance) and diverged(float("inf"), chance)
    assert not diverged(1e9, 0.0)  # a zero chance loss: only non-finite counts


@pytest.mark.parametrize("extra", [[], ["seeds=[0,1]", "run_dir={d}/s${{seed}}"]], ids=["single", "vectorised"])
def test_huge_learning_rate_is_diverged(tmp_path, extra):
    """lr=1e6: a finite loss ~1e21 in epoch 1 at chance accuracy; both trainers call it diverged."""
    import json

    args = [a.format(d=tmp_path) for a in extra] or [f"run_dir={tmp_path}/s0"]
    p = run_cli("optimizer.lr=1e6", "trainer.max_epochs=3", "trainer.threads=1", "trainer.progress=quiet", *args)
    assert p.returncode == 0, p.stderr[-2000:]
    for s in sorted(tmp_path.glob("s*/summary.json")):
        summary = json.loads(s.read_text())
        assert summary["diverged"] is True and summary["epochs"] == 1, summary


# -----------------------------------------------------------------------------
# two trainings in one run dir: the second is refused


def test_second_training_in_a_run_dir_is_refused(tmp_path):
    run_dir = tmp_path / "r"
    cmd = [
        sys.executable,
        "-m",
        "actlab.train",
        "trainer.max_epochs=100000",  # still training when the second start is refused (killed below)
        "trainer.threads=1",
        "trainer.progress=quiet",
        f"run_dir={run_dir}",
    ]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run_dir / "metrics.csv").exists():  # the first one is training
            assert first.poll() is None and time.time() < deadline, first.communicate()
            time.sleep(0.2)

        # what a start writes (the first process writes its tables and logs on as it trains)
        def once():
            files = [run_dir / "config.yaml", run_dir / train.LOCK_FILE, *(run_dir / ".hydra").iterdir()]
            return {str(p): p.stat().st_mtime_ns for p in files}

        before = once()
        second = run_cli("trainer.max_epochs=200", "trainer.threads=1", "trainer.progress=quiet", f"run_dir={run_dir}")
        assert second.returncode == 2
        line = one_line_error(second.stderr)
        assert line == f"error: run dir {str(run_dir)!r} in use by pid {first.pid} (another actlab.train)", line
        assert once() == before  # the second touched nothing
        assert (run_dir / train.LOCK_FILE).read_text() == f"{first.pid}\n"
        assert first.poll() is None  # and the first trains on
    finally:
        first.kill()
        first.wait()


def test_lock_is_released_when_the_holder_ends(tmp_path):
    p = run_cli("trainer.max_epochs=1", "trainer.threads=1", "trainer.progress=quiet", f"run_dir={tmp_path}/r")
    assert p.returncode == 0, p.stderr[-2000:]
    train.lock_dirs([tmp_path / "r"])  # free again: this process takes it
    lock = train._LOCKS.pop()
    assert lock.name.endswith(train.LOCK_FILE)
    lock.close()


# -----------------------------------------------------------------------------
# run dirs: empty, blocked by a file; a full disk


def test_empty_run_dir_is_refused(tmp_path):
    for value in ("run_dir=", "run_dir=null"):
        p = run_cli(value, *QUICK, cwd=tmp_path)
        assert p.returncode == 2 and "run_dir is empty" in one_line_error(p.stderr)
        assert not list(tmp_path.iterdir())


def test_results_runs_that_is_a_file_is_one_line(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    (repo / "results").mkdir()
    (repo / "results" / "runs").write_text("a file where the runs go\n")
    res = snakemake(
        "results/sweeps/test/summary.csv", "--cores", "1", "--configfile", "conf/sweep/test.yaml", cwd=repo, timeout=180
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "Traceback" not in out and "NotADirectoryError" not in out, out[-3000:]
    assert sum("results directory 'results/runs' is not a directory" in ln for ln in out.splitlines()) == 1, out


@pytest.fixture
def tiny_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_full_disk_is_one_line(tiny_disk):
    """300 kB fill up with the first checkpoint: one line, no traceback."""
    p = run_cli("trainer.max_epochs=2", "trainer.threads=1", "trainer.progress=quiet", f"run_dir={tiny_disk}/r")
    assert p.returncode == 2, p.stderr[-3000:]
    line = one_line_error(p.stderr)
    assert line.startswith("error: No space left on device writing ") and "rerun" in line, line
    assert not (tiny_disk / "r" / "summary.json").exists()


# -----------------------------------------------------------------------------
# atomic writes: the directory is fsynced after the rename


def test_durable_write_fsyncs_the_directory_after_the_rename(tmp_path, monkeypatch):
    import stat

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        os, "fsync", lambda fd: (events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode))), real_fsync(fd))[1]
    )
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", None)), real_replace(a, b))[1])
    atomic.write_text(tmp_path / "a.txt", "x")
    assert events == [("fsync", False), ("replace", None), ("fsync", True)], events
    events.clear()
    atomic.write_text(tmp_path / "b.txt", "x", durable=False)
    assert events == [("replace", None)]


# -----------------------------------------------------------------------------
# the book: built aside and swapped in whole; a failed build leaves no book

BUILD_BOOK = ROOT / "workflow" / "scripts" / "build_book.py"


def _tiny_book(src: Path, page: str) -> None:
    src.mkdir(parents=True, exist_ok=True)
    (src / "_config.yml").write_text('title: t\nexecute:\n  execute_notebooks: "off"\n')
    (src / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (src / "intro.md").write_text(page)


def _build(src, html):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, str(BUILD_BOOK), str(src), str(html), "--all", "-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_book_is_swapped_in_whole_and_removed_when_the_build_fails(tmp_path):
    html = tmp_path / "_build" / "html"
    html.mkdir(parents=True)
    (html / "index.html").write_text("old")
    (html / "old-page.html").write_text("a page the new build no longer has")
    _tiny_book(tmp_path / "src", "# Hello\n\nThe new page.\n")
    assert _build(tmp_path / "src", html).returncode == 0
    assert "The new page." in (html / "intro.html").read_text()
    assert not (html / "old-page.html").exists()  # not old and new pages mixed
    assert [p.name for p in html.parent.iterdir()] == ["html"]  # no temporary dir left
    _tiny_book(tmp_path / "src", "# Hello\n\n{ref}`no-such-label`\n")  # -W: a broken reference fails
    res = _build(tmp_path / "src", html)
    assert res.returncode != 0 and "the book did not build" in res.stderr
    assert not html.exists() and not list(html.parent.iterdir())


def _computing_book(src: Path, second_cell: str) -> None:
    src.mkdir(parents=True, exist_ok=True)
    (src / "_config.yml").write_text(
        "title: t\nexecute:\n  execute_notebooks: force\n  timeout: 120\n  raise_on_error: true\n"
    )
    (src / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: second\n")
    head = (
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "kernelspec:\n  name: python3\n  display_name: Python 3\n---\n"
    )
    (src / "intro.md").write_text(f"{head}# Intro\n\n```{{code-cell}}\nprint(6 * 7)\n```\n")
    (src / "second.md").write_text(f"{head}# Second\n\n```{{code-cell}}\n{second_cell}\n```\n")


def test_computing_pages_run_in_parallel_before_the_build_and_a_failing_page_still_fails_it(tmp_path):
    """build_book executes the pages into a fresh jupyter-cache first (all CPUs); the build then takes
    every page from it (no page executed twice) and shows the same outputs. A page that raises fails
    the build as before, with its error."""
    html = tmp_path / "_build" / "html"
    _computing_book(tmp_path / "src", "print(sum(range(10)))")
    res = _build(tmp_path / "src", html)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert res.stdout.count("Using cached notebook") == 2 and "Executing notebook" not in res.stdout
    assert "42" in (html / "intro.html").read_text() and "45" in (html / "second.html").read_text()
    assert [p.name for p in html.parent.iterdir()] == ["html"]  # the cache went with the temporary dir
    _computing_book(tmp_path / "src", "raise ValueError('page broken here')")
    res = _build(tmp_path / "src", html)
    assert res.returncode != 0 and "page broken here" in res.stdout + res.stderr
    assert not html.exists()


def test_stale_book_is_dropped_after_a_failed_workflow(tmp_path):
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text("book")
    table = tmp_path / "summary.csv"
    table.write_text("old")
    os.utime(html / "index.html", (time.time() + 10, time.time() + 10))  # built after the table

    def run(*inputs):
        return subprocess.run(
            [sys.executable, str(BUILD_BOOK), "--drop-if-stale", str(html), *inputs],
            capture_output=True,
            text=True,
            check=True,
        )

    run(str(table))
    assert (html / "index.html").exists()  # current: kept
    run(str(table), str(tmp_path / "stats.csv"))  # an input a failed job did not make
    assert not html.exists()


# -----------------------------------------------------------------------------
# retries scale memory and time; make setup's torch build


def test_a_retried_training_job_gets_more_memory_and_time(tmp_path_factory):
    """A training job that fails (its run dir is locked by this test) is retried with 2x mem_mb and
    runtime: Snakemake prints each attempt's resources. The failed workflow also removes the old book
    (its inputs were not made: it would look current but is not; the rule's onerror)."""
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    html = repo / TEST_RESULTS / "book" / "html"  # the test sweep's book
    html.mkdir(parents=True)
    (html / "index.html").write_text("a book from before")
    plan = snakemake("-n", "--configfile", "conf/sweep/test.yaml", "--config", "group_by=run", cwd=repo).stdout
    run_dir = repo / planned_run_dir(plan, "relu", 0)
    train.lock_dirs([run_dir])
    lock = train._LOCKS.pop()
    try:
        res = snakemake(
            str(run_dir.relative_to(repo) / "summary.json"),
            "--cores",
            "1",
            "--retries",
            "1",
            "--configfile",
            "conf/sweep/test.yaml",
            "--config",
            "group_by=run",
            cwd=repo,
            timeout=300,
        )
    finally:
        lock.close()
    out = res.stdout + res.stderr
    assert res.returncode != 0
    resources, rule = [], None  # the train job's attempts (the learning-rate selection jobs print theirs too)
    for ln in out.splitlines():
        if ln.startswith(("rule ", "localrule ")):
            rule = ln.split()[1].rstrip(":")
        elif rule == "train" and ln.strip().startswith("resources:"):
            resources.append(ln.strip())
    assert len(resources) == 2, out[-3000:]
    assert "runtime=5," in resources[0] and "mem_mb=1000," in resources[0], resources
    assert "runtime=10," in resources[1] and "mem_mb=2000," in resources[1], resources
    assert not html.exists() and f"removed {TEST_RESULTS}/book/html" in out


def test_timing_rule_memory_scales_with_the_attempt():
    rule = (ROOT / "workflow" / "rules" / "timing.smk").read_text()
    assert 'mem_mb=lambda wildcards, attempt: config["resources"]["mem_mb"] * attempt' in rule
    profile = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    assert "runtime: 60 * attempt" in profile  # timing sets no runtime: the profile's default scales


def _make_n(*args):
    return subprocess.run(["make", "-n", "-B", "setup", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_setup_chooses_the_torch_build():
    cpu = _make_n().stdout
    torch_lines = [ln for ln in cpu.splitlines() if "torch" in ln]
    assert torch_lines and all("torch==2.13.0+cpu" in ln for ln in torch_lines), cpu
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in cpu  # only the fallback asks it
    assert "torch==2.13.0+cpu 2>/dev/null ||" in cpu  # the local try first, no network
    cuda = _make_n("TORCH=cuda").stdout
    assert "pip install --quiet torch==2.13.0\n" in cuda and "+cpu" not in cuda and "whl/cpu" not in cuda
    bad = _make_n("TORCH=gpu")
    assert bad.returncode != 0 and "TORCH must be cpu or cuda, got 'gpu'" in bad.stderr
