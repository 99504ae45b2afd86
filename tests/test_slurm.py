"""The sweep on a real (one-node, localhost) SLURM cluster through profiles/slurm.

The slow test installs Debian's SLURM (tests/slurm/install.sh), starts slurmctld + slurmd + munged
(tests/slurm/cluster.sh, config from tests/slurm/slurm.conf.in written to /etc/slurm/slurm.conf),
and runs the repository's Snakefile on conf/sweep/test.yaml with

    snakemake --profile profiles/slurm --profile tests/slurm/profile --configfile conf/sweep/test.yaml

(tests/slurm/profile only makes status polling fast and uses `squeue`: there is no accounting
database here). It checks that the training jobs went through sbatch and the controller, that a job
cancelled mid-run is resubmitted (retries) or picked up by a rerun without redoing finished runs,
and that results/summary.csv holds the same metrics as a local `snakemake --cores 2` run.
Every daemon it started is stopped at the end, pass or fail. Skips (with the reason) only when not
root or when apt cannot install the packages.

The fast tests check the two profiles' logic without a cluster.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import fcntl
import importlib.util
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SLURM_DIR = ROOT / "tests" / "slurm"
TEST_SWEEP = "conf/sweep/test.yaml"
# The test sweep with its main experiment only (MNIST-1D; the MNIST subset's jobs would double the
# cluster's work and test nothing more here): 3 training jobs and 1 selection job (both rates) per sweep run.
SWEEP = "slurm-test.yaml"
# The checkout to run: this repository (ACTLAB_SLURM_TEST_SOURCE: another tree, for developing the test)
SOURCE = Path(os.environ.get("ACTLAB_SLURM_TEST_SOURCE", ROOT))
# Top-level entries not copied into the test's working copies: outputs and environments.
NOT_COPIED = {
    ".git",
    ".venv",
    "runs",
    "results",
    "logs",
    ".snakemake",
    "outputs",
    "multirun",
    ".pytest_cache",
    "report.html",
}
TARGET = "results/sweeps/test/summary.csv"  # the test sweep: the runs and their table; figures and the book are not the cluster's business
# Columns that describe the machine or the checkout, not the model (timings differ between any two runs).
# (resumed_from_epoch: a cancelled job's rerun resumes from its checkpoint, docs/reliability.md)
NOT_METRICS = {"run_dir", "git_commit", "git_dirty", "device", "hostname", "host", "resumed_from_epoch"}


def _is_metric(column: str) -> bool:
    return column not in NOT_METRICS and "seconds" not in column and not column.startswith("versions")


RUN_TIMEOUT = 240  # seconds for one snakemake invocation (timeout -k: Snakemake traps SIGTERM)


def _yte(path: Path, argv: list[str], env: dict[str, str]) -> dict:
    """A profile as Snakemake parses it (yte), for the given command line and environment."""
    code = (
        "import sys, yte; f = sys.argv[1]; sys.argv = sys.argv[2:]; "
        "print(repr(yte.process_yaml(open(f), require_use_yte=True)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        check=True,
    )
    return ast.literal_eval(out.stdout.strip())


# -----------------------------------------------------------------------------
# fast: the profiles' logic


@pytest.mark.parametrize(
    "argv, env, gpus",
    [
        (["snakemake", "--cores", "2"], {"CUDA_VISIBLE_DEVICES": ""}, 0),
        (["snakemake", "--cores", "2"], {"ACTLAB_GPUS": "3"}, 3),
        (["snakemake", "--cores", "2"], {"CUDA_VISIBLE_DEVICES": "0,1"}, 2),
        (["snakemake", "--cores", "2"], {"CUDA_VISIBLE_DEVICES": ""}, 0),
        (["snakemake", "-e", "local", "--cores", "2"], {"ACTLAB_GPUS": "1"}, 1),
        (["snakemake", "--profile", "profiles/slurm"], {"ACTLAB_GPUS": "1"}, None),
        (["snakemake", "--profile=profiles/slurm"], {"ACTLAB_GPUS": "1"}, None),
        (["snakemake", "--executor", "slurm"], {"ACTLAB_GPUS": "1"}, None),
        (["snakemake"], {"ACTLAB_GPUS": "1", "SNAKEMAKE_PROFILE": "profiles/slurm"}, None),
    ],
)
def test_default_profile_caps_gpus_on_local_runs_only(argv, env, gpus):
    parsed = _yte(ROOT / "profiles" / "default" / "config.yaml", argv, env)
    assert parsed.pop("rerun-incomplete") is True  # on every run (docs/reliability.md)
    assert parsed.pop("show-failed-logs") is True  # a failed job's log in the terminal
    if gpus is None:
        assert "resources" not in parsed, parsed  # cluster run: no global GPU cap
    else:
        assert parsed == {"resources": {"gpu": gpus}}


def test_slurm_profile_reads_cluster_settings_from_the_environment():
    profile = ROOT / "profiles" / "slurm" / "config.yaml"
    bare = _yte(profile, ["snakemake"], {})
    assert bare["executor"] == "slurm"
    assert {"runtime", "mem_mb"} <= set(bare["default-resources"])
    assert "attempt" in str(bare["default-resources"]["runtime"])  # longer on a retry
    assert not {"slurm_partition", "slurm_account"} & set(bare["default-resources"])
    assert "slurm-qos" not in bare and "gpu_model" not in bare["set-resources"]["train"]
    assert int(bare["retries"]) >= 1 and int(bare["latency-wait"]) >= 30

    env = {
        "ACTLAB_SLURM_PARTITION": "cpu",
        "ACTLAB_SLURM_ACCOUNT": "proj42",
        "ACTLAB_SLURM_QOS": "normal",
        "ACTLAB_SLURM_GPU_PARTITION": "gpu",
        "ACTLAB_SLURM_GPU_MODEL": "a100",
    }
    full = _yte(profile, ["snakemake"], env)
    assert full["default-resources"]["slurm_partition"] == "cpu"
    assert full["default-resources"]["slurm_account"] == "proj42"
    assert full["slurm-qos"] == "normal"
    assert full["set-resources"]["train"]["slurm_partition"] == "gpu"
    assert full["set-resources"]["train"]["gpu_model"] == "a100"


def test_slurm_extra_is_an_exact_pin():
    import tomllib

    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(re.fullmatch(r"snakemake-executor-plugin-slurm==[\d.]+", d) for d in groups["slurm"])


# -----------------------------------------------------------------------------
# slow: a real cluster


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running one-node cluster; yields its state dir (logs, jobcomp.log). Always stopped after."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM test needs root (apt-get install, daemons, /etc/slurm/slurm.conf)")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail('snakemake-executor-plugin-slurm is not installed: pip install -e ".[slurm]"')
    inst = _run(["bash", str(SLURM_DIR / "install.sh")], timeout=300)
    if inst.returncode in (3, 4):
        pytest.skip(f"SLURM packages unavailable: {(inst.stderr or inst.stdout).strip().splitlines()[-1:]}")
    assert inst.returncode == 0, inst.stdout + inst.stderr
    # one test cluster per machine (fixed ports, /etc/slurm/slurm.conf): concurrent sessions queue here
    with open(
        "/run/lock/actlab-slurm-test.lock" if os.path.isdir("/run/lock") else "/tmp/actlab-slurm-test.lock", "w"
    ) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = tmp_path_factory.mktemp("slurm-state")
        started = _run(["bash", str(SLURM_DIR / "cluster.sh"), "start", str(state)], timeout=120)
        try:
            assert started.returncode == 0, f"cluster did not start:\n{started.stdout}{started.stderr}"
            yield state
        finally:
            stopped = _run(["bash", str(SLURM_DIR / "cluster.sh"), "stop", str(state)], timeout=120)
            print(started.stderr, stopped.stderr, sep="")
            status = _run(["bash", str(SLURM_DIR / "cluster.sh"), "status", str(state)], timeout=30).stdout
            assert "running" not in status.replace("not running", ""), status


def _copy_checkout(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for entry in SOURCE.iterdir():
        if entry.name in NOT_COPIED or entry.name.endswith(".egg-info"):
            continue
        if entry.is_dir():
            shutil.copytree(
                entry, dest / entry.name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "_build")
            )
        else:
            shutil.copy2(entry, dest / entry.name)
    sweep = yaml.safe_load((SOURCE / TEST_SWEEP).read_text())
    sweep["experiments"] = sweep["experiments"][:1]
    (dest / SWEEP).write_text(yaml.safe_dump(sweep))
    return dest


def _env() -> dict[str, str]:
    """The user's shell after `. .venv/bin/activate`: the venv first on PATH, no SLURM job context."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SNAKEMAKE_PROFILE"))}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("ACTLAB_GPUS", None)
    return env


def _snakemake(args: list[str]) -> list[str]:
    return ["timeout", "-k", "15", str(RUN_TIMEOUT), sys.executable, "-m", "snakemake", *args]


def _tail(path: Path, n: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else "(no log)"


def _squeue() -> list[dict[str, str]]:
    """Every job the controller knows (MinJobAge keeps finished ones): id, state, comment."""
    out = _run(["squeue", "--states=all", "-h", "-o", "%i|%T|%k"], timeout=30).stdout
    return [dict(zip(("id", "state", "comment"), line.split("|", 2))) for line in out.splitlines() if line]


def _run_on_cluster(workdir: Path, log: Path, extra: list[str], cancel: int = 0) -> tuple[int, list[str]]:
    """Run the sweep through profiles/slurm; `cancel` running training jobs are scancel'ed mid-run.
    Returns (exit status, ids of the jobs cancelled)."""
    cmd = _snakemake(
        [TARGET, "--profile", "profiles/slurm", "--profile", "tests/slurm/profile", "--configfile", SWEEP, *extra]
    )
    cancelled: list[str] = []
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while proc.poll() is None:
                if len(cancelled) < cancel:
                    for job in _squeue():
                        if (
                            job["state"] == "RUNNING"
                            and _rule(job) == "rule_train"  # a study training job, not a selection one
                            and job["id"] not in cancelled
                        ):
                            time.sleep(1.0)  # let it get going: a kill in the middle of training
                            subprocess.run(["scancel", job["id"]], check=True)
                            cancelled.append(job["id"])
                            break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:  # the test itself failed: take the whole process group down
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, cancelled


def _submissions(log: Path) -> dict[str, str]:
    """slurm job id -> the log line announcing it: 'Job 4 has been submitted with SLURM jobid 12 (log: ...)'."""
    text = log.read_text(errors="replace")
    return {m.group(1): m.group(0) for m in re.finditer(r"submitted with SLURM jobid (\d+) \(log: [^)]*\)", text)}


def _jobcomp(state: Path) -> dict[str, str]:
    """The controller's record of finished jobs (jobcomp/filetxt): job id -> JobState."""
    path = state / "jobcomp.log"
    text = path.read_text() if path.exists() else ""
    return dict(re.findall(r"JobId=(\d+) .*?JobState=(\S+)", text))


def _rule(job: dict) -> str:
    """The Snakemake rule of a SLURM job, from its comment (rule_<name>_wildcards_...)."""
    return job["comment"].split("_wildcards_")[0]


def _summary(workdir: Path) -> list[dict[str, str]]:
    with open(workdir / TARGET, newline="") as f:
        return list(csv.DictReader(f))


def _metric_table(rows: list[dict[str, str]]) -> dict[tuple, dict[str, str]]:
    keys = [k for k in ("dataset", "model", "activation", "seed", "depth", "width", "init") if k in rows[0]]
    return {tuple(r[k] for k in keys): {c: v for c, v in r.items() if _is_metric(c)} for r in rows}


def _summaries(workdir: Path) -> dict[str, float]:
    """Every run's summary.json -> its modification time."""
    return {
        str(p.relative_to(workdir)): p.stat().st_mtime for p in workdir.rglob("summary.json") if "logs" not in p.parts
    }


@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.timeout(1200)  # three sweeps (local + two cluster runs), each with its learning-rate selection jobs
def test_sweep_on_slurm_matches_local_run(slurm_cluster, tmp_path):
    state = slurm_cluster
    if not (SOURCE / TEST_SWEEP).exists():
        pytest.fail(f"{TEST_SWEEP} is missing")
    t0 = time.monotonic()

    # 1. reference: the same sweep, locally, in its own copy
    local = _copy_checkout(tmp_path / "local")
    log = tmp_path / "local.log"
    with open(log, "w") as out:
        r = subprocess.run(
            _snakemake([TARGET, "--cores", "2", "--configfile", SWEEP]),
            cwd=local,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    assert r.returncode == 0, f"local run failed:\n{_tail(log)}"
    t_local = time.monotonic() - t0

    # 2. on the cluster, without retries: one training job is cancelled by the cluster mid-run;
    #    the others finish (keep-going) and Snakemake exits non-zero
    work = _copy_checkout(tmp_path / "cluster")
    log1 = tmp_path / "cluster-1.log"
    rc1, cancelled1 = _run_on_cluster(work, log1, ["--retries", "0"], cancel=1)
    assert len(cancelled1) == 1, f"no training job was seen running:\n{_tail(log1)}"
    assert rc1 != 0, f"a cancelled job must fail the run:\n{_tail(log1)}"
    sub1 = _submissions(log1)
    finished = _summaries(work)
    t_run1 = time.monotonic() - t0

    # 3. the rerun (the documented way to resume, with the profile's retries): only the missing
    #    training job is submitted again; it is cancelled once more and resubmitted by Snakemake
    log2 = tmp_path / "cluster-2.log"
    rc2, cancelled2 = _run_on_cluster(work, log2, [], cancel=1)
    assert rc2 == 0, f"rerun failed:\n{_tail(log2)}"
    assert len(cancelled2) == 1, f"no training job was seen running in the rerun:\n{_tail(log2)}"
    sub2 = _submissions(log2)
    t_run2 = time.monotonic() - t0

    # jobs went through sbatch and the controller: every submitted id is in squeue's history
    # and the controller's completion log, with the state we expect
    jobs = {j["id"]: j for j in _squeue()}
    done = _jobcomp(state)
    for jid in [*sub1, *sub2]:
        assert jid in jobs, f"job {jid} unknown to the controller"
        want = "CANCELLED" if jid in cancelled1 + cancelled2 else "COMPLETED"
        assert jobs[jid]["state"] == want and done.get(jid) == want, (jid, jobs[jid], done.get(jid))
    assert set(cancelled1 + cancelled2) <= set(sub1) | set(sub2)
    # SLURM logs kept per job (profile: slurm-keep-successful-logs); the jobs ran the training
    for jid, line in [*sub1.items(), *sub2.items()]:
        job_log = Path(re.search(r"\(log: ([^)]*)\)", line).group(1))
        assert job_log.exists(), line
        if jobs[jid]["comment"].startswith("rule_train") and jid not in cancelled1 + cancelled2:
            assert "-m actlab.train" in job_log.read_text(errors="replace"), job_log
    train1 = [j for j in sub1 if _rule(jobs[j]) == "rule_train"]
    train2 = [j for j in sub2 if _rule(jobs[j]) == "rule_train"]

    # resume kept the finished runs: none of them was trained again
    assert finished, "no run finished in the first cluster run"
    after = _summaries(work)
    assert {k: after.get(k) for k in finished} == finished
    # the rerun submitted only the cancelled training job (twice: its retry after the 2nd cancel)
    assert len(train1) >= 2, f"the test sweep should have 2+ training jobs, got {sub1}"
    assert len(train2) == 2, f"rerun should submit the one unfinished job and its retry, got {sub2}"
    assert jobs[train2[0]]["comment"] == jobs[cancelled1[0]]["comment"]
    assert "Trying to restart job" in log2.read_text(), "no retry in the rerun's log"

    # same numbers as the local run
    ours, ref = _metric_table(_summary(work)), _metric_table(_summary(local))
    assert ours.keys() == ref.keys()
    assert any("acc" in c or "loss" in c for c in next(iter(ref.values()))), "no metric columns"
    for key in ref:
        for col, want in ref[key].items():
            got = ours[key][col]
            try:
                same = float(got) == float(want) or (math.isnan(float(got)) and math.isnan(float(want)))
            except ValueError:
                same = got == want
            assert same, f"{key} {col}: cluster {got!r} != local {want!r}"

    print(
        f"\nlocal run {t_local:.0f} s; cluster run 1 {t_run1 - t_local:.0f} s; "
        f"rerun {t_run2 - t_run1:.0f} s; SLURM jobs {sorted(map(int, [*sub1, *sub2]))}; "
        f"cancelled {cancelled1 + cancelled2}"
    )
    # only training jobs were submitted: the light rules ran in Snakemake's own process (localrules)
    rules = {_rule(jobs[j]) for j in [*sub1, *sub2]}
    assert rules == {"rule_train", "rule_train_lr"}, (
        f"submitted to SLURM: {sorted(rules)}; all but the training rules must be `localrules:` in the Snakefile"
    )
