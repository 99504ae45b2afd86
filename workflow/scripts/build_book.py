"""Build the article and publish it whole (the `book` rule, workflow/rules/book.smk).

python build_book.py SRC HTML [jupyter-book build options...]
    builds SRC into a temporary dir beside HTML, then swaps it in with two renames: HTML is only
    ever a complete build, never a killed build's half or old and new pages mixed. A failed build
    removes HTML (Snakemake deletes its index.html anyway): no book that looks current is left.
    The computing pages are executed first, as many at once as there are CPUs, into a jupyter-cache
    made for this build alone (jupyter-cache's `local-parallel` executor, as `jcache project
    execute` runs it); the book then builds with `execute_notebooks: cache` from it. A page the
    cache does not hold (one that failed) is executed again by the build, which reports its error.
python build_book.py --drop-if-stale HTML INPUT...
    after a failed workflow (the rule's onerror): removes HTML when an input of the book is
    missing or newer than HTML/index.html, so a failed aggregation never leaves a book that
    looks current.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


def computing_pages(src: Path) -> list[Path]:
    """The pages of the book's table of contents that have code cells."""
    toc = yaml.safe_load((src / "_toc.yml").read_text())
    names = [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]
    pages = [src / f"{n}.md" for n in names]
    return [p for p in pages if p.is_file() and "```{code-cell}" in p.read_text()]


def execute_in_parallel(src: Path, tmp: Path) -> list[str]:
    """Execute SRC's computing pages into a new jupyter-cache under `tmp`, os.cpu_count() at a time
    (6 pages of ~8-13 s each, mostly imports, were executed one after another by the build), and
    return the build options (a copy of SRC's _config.yml) that build from that cache; none when
    SRC does not execute every page at every build (`execute_notebooks: force`). The pages' working
    dir is their own dir, as when the build executes them."""
    config = yaml.safe_load((src / "_config.yml").read_text()) or {}
    execute = config.get("execute", {})
    if execute.get("execute_notebooks") != "force":
        return []
    from jupyter_cache import get_cache  # imported here: only a build that executes needs them
    from jupyter_cache.executors import load_executor

    cache = get_cache(tmp / "jupyter_cache")
    for page in computing_pages(src):
        cache.add_nb_to_project(str(page.resolve()), read_data={"name": "myst_nb_md", "type": "plugin"})
    load_executor("local-parallel", cache).run_and_cache(
        timeout=execute.get("timeout", 30), allow_errors=execute.get("allow_errors", False)
    )
    execute.update(execute_notebooks="cache", cache=str(tmp / "jupyter_cache"))
    sphinx = config.get("sphinx", {})
    if "local_extensions" in sphinx:  # the config moves: its relative paths must not
        sphinx["local_extensions"] = {k: str((src / v).resolve()) for k, v in sphinx["local_extensions"].items()}
    path = tmp / "_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return ["--config", str(path)]


def build(src: str, html: Path, options: list[str]) -> int:
    html.parent.mkdir(parents=True, exist_ok=True)
    for old in html.parent.glob(f".{html.name}-*"):  # what a killed build left
        shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{html.name}-", dir=html.parent))  # same filesystem: rename works
    try:
        if not any(re.match(r"--config(=|$)", o) for o in options):
            options = [*options, *execute_in_parallel(Path(src), tmp)]
        rc = subprocess.call(["jupyter-book", "build", *options, "--path-output", str(tmp), src])
        new = tmp / "_build" / "html"
        if rc != 0 or not (new / "index.html").is_file():
            shutil.rmtree(html, ignore_errors=True)
            print(f"error: the book did not build (exit {rc}); removed {html}", file=sys.stderr)
            return rc or 1
        if html.exists():
            os.rename(html, tmp / "previous")  # gone for an instant, never mixed
        os.rename(new, html)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the previous book, doctrees, a killed build's leftovers


def stale(index: Path, inputs: list[str]) -> bool:
    if not index.is_file():
        return False
    built = index.stat().st_mtime
    return any(not Path(p).exists() or Path(p).stat().st_mtime > built for p in inputs)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--drop-if-stale":
        html, inputs = Path(argv[1]), argv[2:]
        if stale(html / "index.html", inputs):
            shutil.rmtree(html)
            print(f"removed {html}: it is older than the results that failed to update it", file=sys.stderr)
        return 0
    src, html, *options = argv
    return build(src, Path(html), options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
