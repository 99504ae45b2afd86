"""Sphinx extension for the article: results-aware rebuilds, and an offline-only page head.

1. Re-read the computing pages whenever results/ (or the code they import) changed.

Sphinx re-reads a page only when its source file changed; the article's pages also depend on the
results directory ($ACTLAB_RESULTS) and on paper/*.py. This extension fingerprints those (paths,
sizes and modification times) and, when the fingerprint differs from the last build's, marks every
page that has code cells as outdated, so `jupyter-book build paper/` after a new sweep updates
every number and figure without needing --all.

2. Keep the built pages free of network loads. jupyter-book adds every *.js under _static/ to every
page (html_js_files), which would load the vendored MathJax a second time, without `defer`, on
every page; Sphinx's mathjax extension already adds it (mathjax_path) where a page has math. And
sphinx-thebe puts its CDN URL (unpkg.com) into every page although thebe is off: both are dropped.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

PAPER = Path(__file__).resolve().parent.parent
# What the pages read under the results directory (not logs/, screenshots/ or the book's own files).
READ = (
    "summary.*",
    "sweep.json",
    "stats/**/*",
    "curves/**/*",
    "depth/**/*",
    "figures/**/*",
    "benchmarks/**/*.tsv",
    "runs/**/summary.json",
    "runs/**/config.yaml",
    "book/**/*",
)


def _fingerprint() -> str:
    sys.path.insert(0, str(PAPER))
    try:
        import bookdata
    finally:
        sys.path.remove(str(PAPER))
    h = hashlib.sha256(str(bookdata.results_dir()).encode())
    files = [*sorted(PAPER.glob("*.py"))]
    root = bookdata.results_dir()
    if root.is_dir():
        for pattern in READ:
            files += sorted(p for p in root.glob(pattern) if p.is_file() and not p.name.startswith("book"))
    import importlib.util

    spec = importlib.util.find_spec("actlab")  # the package's files, without importing torch
    if spec and spec.origin:
        files += sorted(Path(spec.origin).parent.glob("*.py"))
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _is_computing(path: Path) -> bool:
    try:
        return "```{code-cell}" in path.read_text(encoding="utf-8")
    except OSError:
        return False


def _outdated(app, env, added, changed, removed):
    fp = _fingerprint()
    old = getattr(env, "actlab_results_fingerprint", None)
    env.actlab_results_fingerprint = fp
    if old is None or old == fp:
        return []
    return [
        doc
        for doc in env.found_docs
        if doc not in added and doc not in changed and _is_computing(Path(env.doc2path(doc)))
    ]


def _drop_auto_js(app, config):
    def name(entry):
        return str(entry[0] if isinstance(entry, (tuple, list)) else entry)

    config.html_js_files = [e for e in config.html_js_files if not name(e).startswith("mathjax/")]


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    keep = [
        js
        for js in scripts
        if "thebe" not in str(getattr(js, "filename", js) or "")
        and "THEBE_JS_URL" not in str(getattr(js, "attributes", {}).get("body", ""))
    ]
    scripts[:] = keep


def setup(app):
    app.connect("env-get-outdated", _outdated)
    app.connect("config-inited", _drop_auto_js)
    app.connect("html-page-context", _drop_thebe)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
