"""The exploration notebooks (notebooks/*.py, jupytext percent format) are executed, so they never rot.

They run with nbclient on the results of the real tiny sweep that tests/test_book.py makes (one
Snakemake run per test session, shared), with $ACTLAB_RESULTS pointing at it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def test_there_are_notebooks_in_percent_format():
    import jupytext

    assert NOTEBOOKS, "no notebooks/*.py"
    for path in NOTEBOOKS:
        nb = jupytext.read(path)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent", path.name
        assert any(c.cell_type == "markdown" for c in nb.cells) and any(c.cell_type == "code" for c in nb.cells)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_the_tiny_sweep(path, built_book, monkeypatch):
    import jupytext
    from nbclient import NotebookClient

    monkeypatch.setenv("ACTLAB_RESULTS", str(built_book["results"]))  # inherited by the kernel
    nb = jupytext.read(path)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
    # it read the sweep it was pointed at
    printed = "".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )
    if path.stem == "explore_results":
        assert str(built_book["results"]) in printed


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The tiny sweep of tests/test_book.py (the same one, when both modules run in one session)."""
    from test_book import BIN, existing_book, tiny_sweep

    existing = existing_book()
    if existing:
        return existing
    if not (BIN / "snakemake").exists():
        pytest.skip("snakemake is not installed in this environment")
    return tiny_sweep(str(tmp_path_factory.getbasetemp() / "book"))
