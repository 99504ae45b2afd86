# The article: the Jupyter Book in paper/, built from the figures and tables above.
#
# Sources are read from the repository's paper/ (REPO, the Snakefile's directory); the pages read
# the results of *this* working directory (ACTLAB_RESULTS), and the HTML goes to
# <working directory>/paper/_build/html, so `snakemake --directory /elsewhere` (the tests) builds its
# own book from its own results without touching the repository's paper/_build.
import json

BOOK_SRC = REPO / "paper"
# beside the HTML: paper/_build/pdf/ for the default sweep, results/sweeps/<name>/book/pdf/ for another
BOOK_PDF = Path(BOOK_INDEX).parent.parent / "pdf" / "actlab.pdf"


localrules:
    sweep_config,
    book,
    book_pdf,
    pdf,


rule sweep_config:
    """The sweep Snakemake ran (conf/sweep/default.yaml merged with any --configfile/--config), as
    JSON, for the article's reproducibility appendix; rewritten whenever the sweep changes."""
    output:
        RESULTS / "sweep.json",
    log:
        LOGS / "sweep_config.log",
    conda:
        ENV
    params:
        sweep=lambda wildcards: json.dumps(config, indent=1, default=str),  # a function: "${seed}" stays text
    shell:
        "printf '%s\\n' {params.sweep:q} > {output:q} 2> {log:q}"


rule book:
    """Build the article to paper/_build/html/index.html, from scratch (--all) and with warnings as
    errors (-W): a page that cannot compute a number, a missing figure or a broken reference fails
    the build instead of publishing a wrong book. `jupyter-book build paper/` works alone too.
    Built in a temporary dir and swapped in whole (workflow/scripts/build_book.py); a failed build
    removes the old book. The pages are executed first, as many at once as there are cores, into a
    jupyter-cache of this build alone, from which the build takes their outputs."""
    input:
        sources=book_sources,
        figures=all_figures,
        tables=all_tables,
        sweep=RESULTS / "sweep.json",
        script=SCRIPTS / "build_book.py",
    output:
        BOOK_INDEX,
    log:
        LOGS / "book.log",
    benchmark:
        BENCH / "book.tsv"
    conda:
        ENV
    params:
        src=BOOK_SRC,
        html=Path(BOOK_INDEX).parent,  # paper/_build/html of the working directory
        results=lambda wildcards: Path(RESULTS).resolve(),
    shell:
        "ACTLAB_RESULTS={params.results:q} python {input.script:q} {params.src:q} {params.html:q}"
        " --all -W -n --keep-going > {log:q} 2>&1"


rule book_pdf:
    """The whole article as one PDF, printed from the built HTML by headless Chromium (the browser
    the tests use; no LaTeX, no network) page by page in reading order, after MathJax has typeset,
    and joined with pypdf, one bookmark per page (workflow/scripts/print_book.py). Written aside and
    renamed into place. Not part of `all` (it needs Chromium): `snakemake --cores all pdf`."""
    input:
        html=BOOK_INDEX,
        script=SCRIPTS / "print_book.py",
    output:
        BOOK_PDF,
    log:
        LOGS / "book_pdf.log",
    benchmark:
        BENCH / "book_pdf.tsv"
    conda:
        ENV
    params:
        html=Path(BOOK_INDEX).parent,
    shell:
        "python {input.script:q} {params.html:q} {output:q} > {log:q} 2>&1"


rule pdf:
    """`snakemake --cores all pdf`: the book, then its PDF (paper/_build/pdf/actlab.pdf for the
    default sweep)."""
    input:
        BOOK_PDF,


onerror:
    # A failed run (say, the aggregation) leaves the old book only if nothing it shows has changed.
    shell(
        "python {SCRIPTS}/build_book.py --drop-if-stale {BOOK_INDEX.parent:q} {inputs:q}",
        inputs=[*book_sources(), *all_figures(), *all_tables(), str(RESULTS / "sweep.json")],
    )
