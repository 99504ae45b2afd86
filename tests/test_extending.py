"""docs/extending.md's promises, tested the way a user follows them: the README's example activation
is added to a copy of the repository as exactly two files (a registry entry + a YAML), and the
tests that parametrise over the registry pass there unedited, and a run trains with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, TEST_MAIN, TEST_SUBSET
from test_pipeline import TEST_RESULTS, TEST_SWEEP, copy_repo, job_counts


def _readme_example() -> tuple[str, str, str]:
    """(python block, yaml path, yaml text) of README's "Adding an activation"."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Adding an activation") :]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    yml = re.search(r"```yaml\n# (\S+)\n(.*?)```", section, re.S)
    return python, yml.group(1), yml.group(2)


def test_readme_example_is_two_files():
    python, yaml_path, yaml_text = _readme_example()
    assert re.search(r"register\(\s*Spec\(", python) and yaml_path.startswith("conf/activation/")
    name = re.search(r'Spec\(\s*"(\w+)"', python).group(1)
    assert yaml_text.strip() == f"name: {name}"


@pytest.mark.slow
def test_adding_the_readme_activation_needs_no_other_edit(tmp_path):
    python, yaml_path, yaml_text = _readme_example()
    name = re.search(r'Spec\(\s*"(\w+)"', python).group(1)
    repo = tmp_path / "repo"
    copy_repo(repo)
    reg = repo / "src" / "actlab" / "activations.py"
    src = reg.read_text()
    anchor = "NAMES: tuple[str, ...] = tuple(REGISTRY)"
    assert anchor in src
    reg.write_text(src.replace(anchor, python + "\n" + anchor))
    (repo / yaml_path).write_text(yaml_text)
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "ACTLAB_CONF": str(repo / "conf")}
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not slow",
            "tests/test_activations.py",
            "tests/test_depth.py",
            "tests/test_pipeline.py::test_sweep_configs_cover_what_the_study_needs",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert (
        f"[{name}]"
        in subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "--collect-only", "tests/test_activations.py"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )  # it was tested, not skipped
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "actlab.train",
            f"activation={name}",
            "trainer.max_epochs=1",
            "trainer.progress=quiet",
            f"run_dir={tmp_path / 'run'}",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "run" / "summary.json").exists()


# -----------------------------------------------------------------------------
# an analysis: one probe + one figure script (docs/extending.md), picked up without editing a list

LOCAL_AND_REPORTED = """
import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.io import get_flag_value, is_flagged
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=[Path(sys.argv[1])]),
        snakefile=Path("Snakefile"),
    )
    wf.dag()  # parses the Snakefile
    inner = wf._workflow
    rule = inner.get_rule(sys.argv[2])
    png = [f for f in rule.output if is_flagged(f, "report")]
    print("local" if rule.name in inner._localrules else "not local")
    print("report", *(get_flag_value(f, "report").caption for f in png))
"""


def _analysis_example() -> tuple[str, str, str]:
    """(probe line, script path, script text) of docs/extending.md's "An analysis"."""
    text = (ROOT / "docs" / "extending.md").read_text()
    section = text[text.index("## An analysis: a probe + a figure") :]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    probe = "\n".join(line[3:] for line in blocks[0].splitlines())  # the list item's indent
    script = "\n".join(line[3:] for line in blocks[1].splitlines()) + "\n"
    path, _, body = script.partition("\n")
    return probe.rstrip(), path.removeprefix("# ").strip(), body


def test_the_analysis_example_is_one_probe_line_and_one_script():
    probe, path, body = _analysis_example()
    assert re.fullmatch(r'    stats\["\w+"\] = .*', probe) and path.startswith("workflow/scripts/fig_")
    assert "\nFIGURE = {" in body and "figlib.save(" in body


@pytest.mark.slow
def test_adding_the_documented_analysis_needs_no_other_edit(tmp_path):
    probe, path, body = _analysis_example()
    name = path.removeprefix("workflow/scripts/fig_").removesuffix(".py")
    metric = re.search(r'stats\["(\w+)"\]', probe).group(1)
    repo = copy_repo(tmp_path / "repo")
    probes = repo / "src" / "actlab" / "units.py"
    src = probes.read_text()
    anchor = "    return stats\n\n\ndef measure_units"
    assert src.count(anchor) == 1
    probes.write_text(src.replace(anchor, probe + "\n" + anchor))
    (repo / path).write_text(body)
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "ACTLAB_CONF": str(repo / "conf")}
    run = lambda *args, **kw: subprocess.run(  # noqa: E731
        args, cwd=kw.pop("cwd", repo), env={**env, **kw.pop("env", {})}, capture_output=True, text=True, timeout=300
    )

    # the probe measures it
    res = run(
        sys.executable,
        "-c",
        "import torch; from torch import nn; from actlab import units; "
        f"print(units.unit_stats(nn.ReLU(), torch.randn(64, 8), 0.0, 0.1, None)[{metric!r}])",
    )
    assert res.returncode == 0 and "tensor(" in res.stdout, res.stderr[-2000:]

    # the rules plan it for each experiment, as a local rule whose PNG goes into the report
    snakemake = [sys.executable, "-m", "snakemake"]
    res = run(*snakemake, "-n", "--configfile", TEST_SWEEP)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert job_counts(res.stdout).get(f"fig_{name}") == 2, res.stdout  # the test sweep's 2 experiments
    for experiment in (TEST_MAIN, TEST_SUBSET):
        assert f"{TEST_RESULTS}/figures/{experiment}/{name}.png" in res.stdout
    res = run(sys.executable, "-c", LOCAL_AND_REPORTED, TEST_SWEEP, f"fig_{name}")
    assert res.returncode == 0, res.stderr[-3000:]
    local, report = res.stdout.strip().split("\n")[-2:]
    assert local == "local" and report.startswith("report ") and report.endswith("/report/figure.rst"), res.stdout

    # the script draws it from the aggregated curves, and the book lists it under "Other analyses"
    results = tmp_path / "results"
    (results / "curves").mkdir(parents=True)
    rows = [
        {"experiment": "digits_mlp", "activation": a, "seed": s, "dataset": "digits", "model": "mlp", "epoch": e,
         "layer": "act1", "metric": metric, "value": 0.5 + 0.1 * e}
        for a in ("relu", "tanh") for s in (0, 1) for e in (1, 2)
    ]  # fmt: skip
    pd.DataFrame(rows).to_parquet(results / "curves" / "dead_units.parquet")
    pd.DataFrame(
        [{"experiment": "digits_mlp", "dataset": "digits", "model": "mlp", "depth": 2, "width": 32}]
    ).to_parquet(results / "summary.parquet")
    png = results / "figures" / "digits_mlp" / f"{name}.png"
    res = run(
        sys.executable, path, "--curves", str(results / "curves" / "dead_units.parquet"),
        "--experiment", "digits_mlp", "--activations", "relu", "tanh", "--out", str(png), str(png.with_suffix(".svg")),
    )  # fmt: skip
    assert res.returncode == 0 and png.is_file(), res.stderr[-2000:]
    res = run(
        sys.executable, "-c", "import bookdata as bd; print(bd.other_figures({'accuracy'}))",
        cwd=repo / "paper", env={"ACTLAB_RESULTS": str(results)},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("## Other analyses") and f"{name}.png" in res.stdout, res.stdout
    assert "Fraction of hidden-unit outputs above 0" in res.stdout and "2×32 MLP" in res.stdout, res.stdout
