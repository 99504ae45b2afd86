# The article: the Jupyter Book in paper/, built from the figures and tables above.
#
# Sources are read from the repository's paper/ (REPO, the Snakefile's directory); the pages read
# the results of *this* working directory (ACTLAB_RESULTS), and the HTML goes to
# <working directory>/paper/_build/html, so `snakemake --directory /elsewhere` (the tests) builds its
# own book from its own results without touching the repository's paper/_build.
import json

BOOK_SRC = REPO / "paper"


localrules:
    sweep_config,


def book_source_files(wildcards=None):
    """Every file of the book's source (pages, code, bibliography, extension, static files), so any
    edit rebuilds it; not its build output nor editor/Python caches."""
    skip = {"_build", "__pycache__", ".ipynb_checkpoints", ".jupyter_cache"}
    return sorted(str(p) for p in BOOK_SRC.rglob("*")
                  if p.is_file() and not skip.intersection(p.relative_to(BOOK_SRC).parts)
                  and not p.name.startswith("."))


rule sweep_config:
    """The sweep Snakemake ran (conf/sweep/default.yaml merged with any --configfile/--config),
    for the article's reproducibility appendix; rewritten whenever the sweep changes."""
    output:
        RESULTS / "sweep.yaml",
    params:
        sweep=json.dumps(config, sort_keys=True, default=str),
    log:
        LOGS / "sweep_config.log",
    run:
        import yaml

        text = ("# The sweep of these results, as Snakemake resolved it (written by rule sweep_config).\n"
                + yaml.safe_dump(json.loads(params.sweep), sort_keys=False, default_flow_style=None, width=100))
        Path(output[0]).write_text(text)
        Path(log[0]).write_text(f"wrote {output[0]}\n")


rule book:
    """Build the article to paper/_build/html/index.html, from scratch (--all) and with warnings as
    errors (-W): a page that cannot compute a number, a missing figure or a broken reference fails
    the build instead of publishing a wrong book. `jupyter-book build paper/` works alone too."""
    input:
        sources=book_source_files,
        figures=all_figures,
        tables=all_tables,
        sweep=RESULTS / "sweep.yaml",
    output:
        BOOK_INDEX,
    params:
        src=BOOK_SRC,
        out=Path(BOOK_INDEX).parents[2],  # paper/ of the working directory; _build/html below it
        results=lambda wildcards: Path(RESULTS).resolve(),
    conda:
        ENV
    log:
        LOGS / "book.log",
    benchmark:
        BENCH / "book.tsv"
    shell:
        "ACTLAB_RESULTS={params.results:q} jupyter-book build --all -W -n --keep-going"
        " --path-output {params.out:q} {params.src:q} > {log:q} 2>&1"
