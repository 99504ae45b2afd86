"""What runs after training (the tables, statistics, figures and the article's pages) starts without
torch: importing it costs seconds per process, and only the activation figure and the errata page
compute with it. The registry's names and colours come without torch (actlab.activations imports it on
the first build); the pages read probes' docstring and units' constants from the source."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
PAPER = ROOT / "paper"

# the figures that draw the activation functions themselves (torch computes them and their derivatives)
FIGURES_WITH_TORCH = {"fig_activations"}
FIGURES = sorted(p.stem for p in SCRIPTS.glob("fig_*.py"))
# the article's modules the pages import (paper/errata.py computes with torch: the errata page only)
PAGE_MODULES = ["wording", "bookdata", "claims", "resultsdata", "design"]
# the pipeline's table jobs (aggregate, statistics, select_lr / lr_selection_table) and the names
# (actlab.machine: the appendix page's cpu_name); what every snakemake command imports to check the
# sweep's configs (workflow/rules/common.smk: actlab.checks, actlab.config, actlab.integrity)
ANALYSIS = [
    "actlab.checks",
    "actlab.config",
    "actlab.integrity",
    "actlab.aggregate",
    "actlab.stats",
    "actlab.lrselect",
    "actlab.names",
    "actlab.activations",
    "actlab.machine",
]


def loads_torch(module: str, path: Path | None = None) -> list[str]:
    """The heavy packages importing `module` loads, in a fresh interpreter."""
    code = (
        "import sys\n"
        + (f"sys.path.insert(0, {str(path)!r})\n" if path else "")
        + f"import {module}\n"
        + "print(' '.join(m for m in ('torch', 'pytorch_lightning', 'lightning') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=path or ROOT)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_every_figure_with_torch_exists():
    assert FIGURES_WITH_TORCH <= set(FIGURES)


@pytest.mark.parametrize("figure", [f for f in FIGURES if f not in FIGURES_WITH_TORCH])
def test_a_figure_script_does_not_import_torch(figure):
    assert loads_torch(figure, SCRIPTS) == []


@pytest.mark.parametrize("module", PAGE_MODULES)
def test_the_pages_modules_do_not_import_torch(module):
    assert loads_torch(module, PAPER) == []


@pytest.mark.parametrize("module", ANALYSIS)
def test_the_table_jobs_do_not_import_torch(module):
    assert loads_torch(module) == []


def test_pages_read_the_same_docstring_and_constants_as_an_import():
    sys.path.insert(0, str(PAPER))
    try:
        import bookdata as bd
    finally:
        sys.path.remove(str(PAPER))
    import actlab.probes
    import actlab.units

    assert bd.module_doc("actlab.probes") == actlab.probes.__doc__
    for name in ("NO_GRADIENT_EPS", "LOW_VARIANCE_DELTA"):
        assert bd.module_constant("actlab.units", name) == getattr(actlab.units, name)
    with pytest.raises(KeyError):
        bd.module_constant("actlab.units", "NO_SUCH_CONSTANT")


def test_mish_is_one_class_built_on_demand():
    from actlab import activations

    m = activations.build("mish")
    assert type(m) is activations.Mish and activations.Mish.__module__ == "actlab.activations"
    assert type(pickle.loads(pickle.dumps(m))) is activations.Mish
    with pytest.raises(AttributeError):
        activations.NoSuchThing  # noqa: B018
