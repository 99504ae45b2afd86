"""Build the article and publish it whole (the `book` rule, workflow/rules/book.smk).

python build_book.py SRC HTML [jupyter-book build options...]
    builds SRC into a temporary dir beside HTML, then swaps it in with two renames: HTML is only
    ever a complete build, never a killed build's half or old and new pages mixed. A failed build
    removes HTML (Snakemake deletes its index.html anyway): no book that looks current is left.
python build_book.py --drop-if-stale HTML INPUT...
    after a failed workflow (the rule's onerror): removes HTML when an input of the book is
    missing or newer than HTML/index.html, so a failed aggregation never leaves a book that
    looks current.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def build(src: str, html: Path, options: list[str]) -> int:
    html.parent.mkdir(parents=True, exist_ok=True)
    for old in html.parent.glob(f".{html.name}-*"):  # what a killed build left
        shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{html.name}-", dir=html.parent))  # same filesystem: rename works
    try:
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
