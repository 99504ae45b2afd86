# Download the datasets that need it, then train every run of the sweep.
import math


rule download:
    """Fetch and verify one dataset (python -m actlab.download NAME); the marker holds its report."""
    output:
        DATA_MARKS / "{dataset}.txt",
    log:
        LOGS / "download" / "{dataset}.log",
    conda:
        ENV
    shell:
        "python -m actlab.download {wildcards.dataset:q} > {output:q} 2> {log:q}"


# How many runs one training job trains, in one process (sweep config `group_by`): importing torch
# and Lightning costs ~5 s per process, paid once per job. Each run keeps its own run directory and
# its summary.json stays a declared output, so what depends on the runs does not change; but a job
# reruns as a unit (a changed param reruns every run of the job, a failure loses them all).
#   experiment  one job per experiment: every activation x seed, vectorised together
#   activation  one job per (experiment, activation): every seed (parallel GPU / cluster jobs)
#   run         one job per run
TRAIN_JOB = {
    "experiment": Path("{experiment}") / "{key}",
    "activation": Path("{experiment}") / "{key}" / "{activation}",
    "run": Path("{experiment}") / "{key}" / "{activation}" / "seed{seed}",
}[config["group_by"]]
TRAIN_RUNS = {  # what one job's runs range over
    "experiment": {"activation": config["activations"], "seed": config["seeds"]},
    "activation": {"seed": config["seeds"]},
    "run": {},
}[config["group_by"]]
RUNS_PER_JOB = math.prod(len(values) for values in TRAIN_RUNS.values())
LR_RUNS_PER_JOB = (
    len(config["activations"])
    * len((config.get("lr_selection") or {}).get("seeds", []))
    * len((config.get("lr_selection") or {}).get("grid", []))
)

# Before the DAG: a finished run whose files fail their integrity record is moved aside (one line each),
# so the jobs below retrain it (common.smk).
reject_damaged_runs()


rule train:
    """The runs of one training job (config `group_by`) in one process, one run directory each."""
    input:
        data=data_marks,
        lr_table=lr_table,
    output:  # each run's summary.json (common.smk run_files; its other files: reject_damaged_runs)
        expand(RUN / "{file}", file=run_files(), **TRAIN_RUNS, allow_missing=True),
    log:
        (LOGS / "train" / TRAIN_JOB).with_suffix(".log"),
    benchmark:
        (BENCH / "train" / TRAIN_JOB).with_suffix(".tsv")
    priority: train_priority(1)  # first: every figure, the statistics and the book wait for the runs
    conda:
        ENV
    threads: config["resources"]["threads"]
    resources:  # a retry (profiles/slurm: retries) gets 2x, then 3x the memory and time
        mem_mb=lambda wildcards, attempt: config["resources"]["mem_mb"] * attempt,
        gpu=config["resources"]["gpu"],
        runtime=lambda wildcards, attempt: config["resources"]["runtime"] * RUNS_PER_JOB * attempt,
    params:
        overrides=train_overrides,
        code=code_fingerprint("train"),  # the training code: an edit that changes what runs retrains
    shell:
        # stdout (per-epoch lines) to the log; stderr (one line per finished run, progress with the time
        # left, errors) to the log and the terminal
        ": > {log:q}; python -m actlab.train {params.overrides:q} trainer.threads={threads}"
        " >> {log:q} 2> >(tee -a {log:q} >&2)"


# Learning-rate selection (sweep config lr_selection): every activation at every rate of the grid, on
# selection seeds of their own, then each activation's best rate on the validation split
# (actlab.lrselect); the experiment's training jobs read the table (lr_table=...).
rule train_lr:
    """The selection runs of one experiment, every rate of the grid, in one process (one start-up)."""
    input:
        data_marks,
    output:
        expand(
            LR_RUN / "{file}",
            file=run_files(),
            lr=[lr_label(lr) for lr in (config.get("lr_selection") or {}).get("grid", [])],
            activation=config["activations"],
            seed=(config.get("lr_selection") or {}).get("seeds", []),
            allow_missing=True,
        ),
    log:
        LOGS / "lr_selection" / "{experiment}" / "{key}" / "train.log",
    benchmark:
        BENCH / "lr_selection" / "{experiment}" / "{key}" / "train.tsv"
    priority: train_priority(2)  # before the study's runs, which wait for the selection
    conda:
        ENV
    threads: config["resources"]["threads"]
    resources:
        mem_mb=lambda wildcards, attempt: config["resources"]["mem_mb"] * attempt,
        gpu=config["resources"]["gpu"],
        runtime=lambda wildcards, attempt: config["resources"]["runtime"] * LR_RUNS_PER_JOB * attempt,
    params:
        overrides=lr_train_overrides,
        code=code_fingerprint("train"),
    shell:
        ": > {log:q}; python -m actlab.train {params.overrides:q} trainer.threads={threads}"
        " >> {log:q} 2> >(tee -a {log:q} >&2)"


rule select_lr:
    """One experiment's learning-rate selection table: each activation's best rate on validation."""
    input:
        lr_runs,
    output:
        LR_TABLE,
    log:
        LOGS / "lr_selection" / "{experiment}" / "{key}" / "select.log",
    priority: train_priority(2)  # as its selection job: the study waits for it (a few seconds)
    conda:
        ENV
    params:
        code=code_fingerprint("lrselect"),
    shell:
        "python -m actlab.lrselect --out {output:q} {input:q} > {log:q} 2>&1"


rule lr_selection_table:
    """Every experiment's selection table in one, for the article (results/stats/lr_selection.csv)."""
    input:
        all_lr_tables,
    output:
        STATS / "lr_selection.csv",
    log:
        LOGS / "lr_selection.log",
    conda:
        ENV
    params:
        code=code_fingerprint("lrselect"),
    shell:
        "python -m actlab.lrselect --combine --out {output:q} {input:q} > {log:q} 2>&1"
