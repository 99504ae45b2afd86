# The whole study: `snakemake --cores all` (after `make setup`; activate .venv first).
#
#   download -> train (group_by: one job per experiment, activation or run) -> aggregate -> statistics
#   depth_study                                                               |           |
#        \----------------------> fig_* (one rule per figure) <---------------+-----------/
#                                        |
#                                       book -> paper/_build/html/index.html
#
# The sweep comes from conf/sweep/default.yaml, validated against workflow/schemas/sweep.schema.yaml
# (then names and Hydra overrides are checked) before any job runs. Another sweep:
# `--configfile conf/sweep/paper.yaml` (GPU) or `--configfile conf/sweep/test.yaml` (CI).
# How it works, and how a rerun works: docs/pipeline.md.


from snakemake.utils import min_version

min_version("9.0")  # the profile keys, `localrules` placement and report API used here (pinned: 9.27.1)


configfile: "conf/sweep/default.yaml"


include: "workflow/rules/common.smk"


check_sweep(config)
# results/ must be a writable directory (or creatable): one line here, not a traceback from the DAG.
if (RESULTS_ROOT.exists() and not RESULTS_ROOT.is_dir()) or not os.access(
    RESULTS_ROOT if RESULTS_ROOT.exists() else ".", os.W_OK
):
    raise WorkflowError(f"results directory {str(RESULTS_ROOT)!r} is not a writable directory (in {os.getcwd()})")
for _dir in (*reversed(RESULTS.parents[:-2]), RESULTS, RUNS, LOGS, BENCH, CURVES, STATS, FIGURES, DEPTH, DATA_MARKS):
    if _dir.exists() and not _dir.is_dir():
        raise WorkflowError(f"results directory {str(_dir)!r} is not a directory (in {os.getcwd()})")


report: "workflow/report/workflow.rst"


wildcard_constraints:
    experiment="[A-Za-z][A-Za-z0-9_]*",
    key="[0-9a-f]{8}",
    lr="[0-9.e+-]+",
    dataset="[A-Za-z][A-Za-z0-9_]*",
    model="[A-Za-z][A-Za-z0-9_]*",
    activation="[A-Za-z][A-Za-z0-9_]*",
    seed="[0-9]+",


localrules:
    all,
    download,
    select_lr,
    lr_selection_table,


rule all:
    """Everything: runs, tables, statistics, figures and the article."""
    input:
        all_targets,


include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/depth.smk"
include: "workflow/rules/timing.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/book.smk"
