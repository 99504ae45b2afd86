"""Print the built article to one PDF (the `pdf` rule, workflow/rules/book.smk).

python print_book.py HTML PDF
    prints every page of the built book HTML/ (reading order: index.html, then each page's
    <link rel="next">, the order of paper/_toc.yml) with headless Chromium, the browser the tests
    use, and joins the pages into PDF with pypdf. No LaTeX and no network: Chromium resolves no
    host name, and the book's MathJax and theme are vendored. Chromium waits (in virtual time) until
    the page is idle, so MathJax has typeset the formulas and the figures have loaded before it
    prints. Each page's title becomes a bookmark. PDF is written aside and renamed into place: it
    is a complete print or absent. Chromium: $CHROMIUM, else chromium / chromium-browser /
    google-chrome on PATH.
"""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUMS = ("chromium", "chromium-browser", "google-chrome")
# Virtual time Chromium lets the page run before printing: MathJax 3 typesets the article's longest
# page in well under a second of it; the budget only ends early when the page goes idle.
VIRTUAL_TIME_MS = 30_000


class _Page(html.parser.HTMLParser):
    """The <title> and the rel="next" link of one Sphinx page."""

    def __init__(self):
        super().__init__()
        self.next, self.title, self._in_title = None, "", False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("rel") == "next" and self.next is None:
            self.next = a.get("href")
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False if tag == "title" else self._in_title

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def reading_order(html: Path) -> list[tuple[Path, str]]:
    """(page, title) from index.html along the rel="next" links; each page once."""
    pages, page = [], html / "index.html"
    while page is not None and page.is_file() and page not in [p for p, _ in pages]:
        p = _Page()
        p.feed(page.read_text(encoding="utf-8"))
        # "Methods — ReLU and its variants, measured": the page's own title, without the book's
        pages.append((page, p.title.split(" \u2014 ")[0].strip()))
        page = (page.parent / p.next.split("#")[0]).resolve() if p.next else None
    return pages


def chromium() -> str:
    exe = os.environ.get("CHROMIUM") or next((shutil.which(c) for c in CHROMIUMS if shutil.which(c)), None)
    if not exe:
        raise SystemExit(
            "error: no chromium on PATH (Debian: apt-get install chromium, or `make system`); set CHROMIUM to use another"
        )
    return exe


def print_page(exe: str, page: Path, out: Path, profile: Path) -> None:
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",  # as root (containers, CI) Chromium refuses to start with its sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing outside the book can load
        "--allow-file-access-from-files",
        "--run-all-compositor-stages-before-draw",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={out}",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"error: chromium could not print {page.name} (exit {proc.returncode}):\n{tail}")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    html, pdf = Path(argv[0]).resolve(), Path(argv[1])
    if not (html / "index.html").is_file():
        print(f"error: {html}/index.html does not exist: build the book first (snakemake --cores all)", file=sys.stderr)
        return 2
    from pypdf import PdfWriter

    exe = chromium()
    pages = reading_order(html)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".print-", dir=pdf.parent) as tmp:
        writer = PdfWriter()
        for i, (page, title) in enumerate(pages):
            part = Path(tmp) / f"{i:02d}-{page.stem}.pdf"
            print_page(exe, page, part, Path(tmp) / "profile")
            first = len(writer.pages)
            writer.append(str(part))
            writer.add_outline_item(title=title, page_number=first)
            print(f"{page.name}: {len(writer.pages) - first} pages ({title})", file=sys.stderr)
        writer.add_metadata({"/Title": pages[0][1]})
        aside = Path(tmp) / pdf.name
        with open(aside, "wb") as f:
            writer.write(f)
        os.replace(aside, pdf)  # same directory tree: atomic
    print(f"{pdf}: {len(writer.pages)} pages from {len(pages)} HTML pages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
