"""The package's imports point one way: errors/config -> data -> activations/models -> engine -> runner
-> cli, analysis beside; no import cycle; no import inside a function without a reason beside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "actlab"
# layer of each module: a module imports only from its own layer or the ones below (lower numbers)
LAYERS = {
    0: {"__init__", "errors", "provenance", "atomic", "integrity"},
    # schema: config's types (imports nothing of actlab); lrselect: the lr_table a job's configs read
    # (config.with_selected_lr)
    1: {"config", "schema", "lrselect", "checks"},
    2: {"data", "download"},
    3: {"activations", "models", "names"},
    4: {
        "units",
        "probes",
        "losses",
        "optim",
        "fastpaths",
        "stacked_mlp",
        "stacked_cnn",
        "stacked_vmap",
        "batches",
        "engine",
        "recorder",
    },
    5: {"checkpoint", "runtime", "rundir", "summary", "fit"},
    6: {"runner"},
    7: {"cli", "train"},
    # analysis: beside the stack, imported by nothing in it
    8: {
        "aggregate",
        "stats",
        "intervals",
        "machine",
        "epochtimes",
        "timing",
        "depthnets",
        "borndead",
        "collapse",
        "depth",
    },
}
LAYER = {m: n for n, ms in LAYERS.items() for m in ms}


def _imports(path: Path) -> list[tuple[str, ast.AST]]:
    """(actlab module imported, the import node) for every import of an actlab module in `path`."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name.split(".")[1], node) for a in node.names if a.name.startswith("actlab.")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "actlab":
                out += [(a.name, node) for a in node.names]
            elif node.module.startswith("actlab."):
                out.append((node.module.split(".")[1], node))
    return out


def _graph() -> dict[str, set[str]]:
    return {p.stem: {m for m, _ in _imports(p) if m != p.stem} for p in SRC.glob("*.py")}


def test_every_module_has_a_layer():
    assert {p.stem for p in SRC.glob("*.py")} == set(LAYER)


def test_no_import_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph.get(m, ())):
            if state.get(t) == "open":
                cycles.append(path[path.index(t) :] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


@pytest.mark.parametrize("module", sorted(LAYER))
def test_imports_point_down(module):
    upward = [t for t in _graph().get(module, ()) if LAYER[t] > LAYER[module]]
    assert upward == [], f"{module} (layer {LAYER[module]}) imports {upward} from above"


def test_in_function_imports_say_why():
    """An import inside a function hides a dependency; allowed only to keep start-up fast (or for a
    platform/capability probe), with the reason in a comment on its line (the first of a group).
    aggregate and stats (the analysis' own, scipy on demand) are exempt."""
    bad = []
    for path in sorted(SRC.glob("*.py")):
        if path.stem in ("aggregate", "stats"):
            continue
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            imports = [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))]
            if imports and not any("#" in lines[n.lineno - 1] for n in imports):
                bad.append(f"{path.name}:{imports[0].lineno}")
    assert bad == []
