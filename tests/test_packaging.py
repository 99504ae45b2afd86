"""pyproject.toml and environment.yml pin the same dependencies."""

import tomllib
import yaml
from conftest import ROOT


def _pyproject_pins() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"])
    for group in project["optional-dependencies"].values():
        pins |= {d for d in group if not d.startswith("actlab")}
    return pins


def _environment_pins() -> set[str]:
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip = [d for entry in deps if isinstance(entry, dict) for d in entry["pip"]]
    assert "-e ." in pip, "environment.yml must install actlab itself"
    return {d for d in pip if d != "-e ."}


def test_environment_yml_pins_what_pyproject_pins():
    assert _pyproject_pins() == _environment_pins()


def test_every_pin_is_exact():
    assert all("==" in d for d in _pyproject_pins())


def test_the_jobs_conda_env_pins_the_same_without_installing_the_checkout():
    """workflow/envs/actlab.yaml (the rules' `conda:`) = environment.yml's pins, but no `-e .`: under
    `--sdm conda` Snakemake builds the env from a copy of the file, where `.` is not the repository;
    the jobs import actlab from the checkout's src/ (PYTHONPATH, workflow/rules/common.smk)."""
    deps = yaml.safe_load((ROOT / "workflow" / "envs" / "actlab.yaml").read_text())["dependencies"]
    pip = [d for entry in deps if isinstance(entry, dict) for d in entry["pip"]]
    assert "-e ." not in pip and set(pip) == _environment_pins()
    assert "PYTHONPATH" in (ROOT / "workflow" / "rules" / "common.smk").read_text()
