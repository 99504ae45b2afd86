# The article: a Jupyter Book in paper/, built from the figures and tables above.

rule book:
    """Build the article (paper/) to paper/_build/html/index.html; rebuilt from scratch (--all)
    so a changed figure always reaches the HTML."""
    input:
        sources=book_sources,
        figures=all_figures,
        tables=all_tables,
    output:
        BOOK_INDEX,
    params:
        book_dir=Path("paper"),
    conda:
        ENV
    log:
        LOGS / "book.log",
    shell:
        "jupyter-book build --all {params.book_dir:q} > {log:q} 2>&1"
