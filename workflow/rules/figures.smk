# One rule per figure script: every workflow/scripts/fig_<name>.py is a rule fig_<name>, found
# (common.smk figure_scripts), not listed. Its module-level FIGURE dict says the scope (once, per
# experiment, per dataset and model), the tables it reads (under this sweep's results dir), the sweep
# settings it takes, its number, title and caption (docs/extending.md). Figures read only aggregated
# tables: restyling one reruns that figure alone (its script is an input), never a training run. Each
# writes PNG + SVG, its provenance (script, commit, inputs) in the files' metadata; the caption names
# the script and the experiment as the article does (params.experiment, from actlab.names).

for _name, _figure in figure_scripts().items():

    rule:
        name:
            f"fig_{_name}"
        input:
            **{key: RESULTS / table for key, table in _figure["inputs"].items()},
            script=SCRIPTS / f"fig_{_name}.py",
            lib=SCRIPTS / "figlib.py",
        output:
            png=figure_output(_name, _figure),
            svg=FIGURE_DIR[_figure["scope"]] / f"{_name}.svg",
        log:
            FIGURE_LOG[_figure["scope"]] / f"{_name}.log",
        localrule: True  # plotting is light: drawn by Snakemake itself, never a cluster job (profiles/slurm)
        conda:
            ENV
        params:
            **figure_params(_figure),
        shell:
            FIGURE_SHELL  # the same for every figure: a loop variable here would be the last one's when jobs run
