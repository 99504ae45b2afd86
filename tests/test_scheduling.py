"""Job order when cores are short: an experiment's `priority` (sweep config) puts its selection and
study jobs before the others', so the sweep's longest chain starts first; it never changes a run's key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def _priorities(configfile: Path | None = None) -> dict[tuple[str, str], tuple[int, str]]:
    """{(rule, experiment): (priority, run key)} of the default sweep's training jobs in a dry run."""
    args = [SNAKEMAKE, "-n", *(["--configfile", str(configfile)] if configfile else [])]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule )", out):
        m = re.match(r"(?:local)?rule (train|train_lr|select_lr):", block)
        w = re.search(r"wildcards: experiment=(\w+), key=([0-9a-f]{8})", block)
        if m and w:
            p = re.search(r"priority: (\d+)", block)
            jobs[(m.group(1), w.group(1))] = (int(p.group(1)) if p else 0, w.group(2))
    return jobs


def test_the_longest_experiment_starts_first_and_keeps_its_runs(tmp_path):
    jobs = _priorities()
    # default sweep: the deep MNIST-1D net has priority 1; selection (2) before study (1), each +2
    assert jobs[("train_lr", "mnist1d_mlp_deep")][0] == 4 and jobs[("train", "mnist1d_mlp_deep")][0] == 3
    for e in ("mnist1d_mlp", "mnist_subset_mlp"):
        assert (jobs[("train_lr", e)][0], jobs[("train", e)][0]) == (2, 1)
    # the table a study waits for goes as early as its selection: not after the depth study (v4's
    # timeline, benchmarks/RESULTS.md: a finished selection waited 4 min for its table)
    for e in ("mnist1d_mlp", "mnist_subset_mlp", "mnist1d_mlp_deep"):
        assert jobs[("select_lr", e)][0] == jobs[("train_lr", e)][0]
    # the deep study goes before every other experiment's selection once its own selection is done
    assert jobs[("train", "mnist1d_mlp_deep")][0] > max(
        jobs[("train_lr", e)][0] for e in ("mnist1d_mlp", "mnist_subset_mlp")
    )

    sweep = yaml.safe_load((ROOT / "conf" / "sweep" / "default.yaml").read_text())
    for e in sweep["experiments"]:
        e["priority"] = 0
    flat = tmp_path / "flat.yaml"
    flat.write_text(yaml.safe_dump(sweep))
    again = _priorities(flat)
    assert {v[0] for v in again.values()} == {1, 2}
    assert {k: v[1] for k, v in again.items()} == {k: v[1] for k, v in jobs.items()}  # the same run keys
