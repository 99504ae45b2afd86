# Finished runs -> one table + tidy curves (aggregate), then statistics across seeds.


# Light rules: run by Snakemake itself, never submitted to a cluster (profiles/slurm).
localrules:
    aggregate,
    statistics,


rule aggregate:
    """One row per run (summary.csv/.parquet) and every run's curves as tidy parquet files."""
    input:  # every run's summary.json (its other files: common.smk reject_damaged_runs)
        summaries=all_summaries,
    output:
        csv=RESULTS / "summary.csv",
        parquet=RESULTS / "summary.parquet",
        metrics=CURVES / "metrics.parquet",
        dead_units=CURVES / "dead_units.parquet",
        grad_flow=CURVES / "grad_flow.parquet",
    log:
        LOGS / "aggregate.log",
    benchmark:
        BENCH / "aggregate.tsv"
    conda:
        ENV
    params:
        out_dir=RESULTS,
        code=code_fingerprint("aggregate"),
    shell:
        "python -m actlab.aggregate --out-dir {params.out_dir:q} {input.summaries:q} > {log:q} 2>&1"


rule statistics:
    """Mean, std, 95% t-interval per activation; paired difference to the baseline (exact sign-flip
    test, Holm-corrected; TOST equivalence); what each experiment can detect (power.csv); seconds
    per epoch per activation."""
    input:
        RESULTS / "summary.parquet",
    output:
        accuracy=STATS / "accuracy.csv",
        vs_relu=STATS / "vs_relu.csv",
        power=STATS / "power.csv",
        compute=STATS / "compute.csv",
    log:
        LOGS / "statistics.log",
    benchmark:
        BENCH / "statistics.tsv"
    conda:
        ENV
    params:
        out_dir=STATS,
        code=code_fingerprint("stats"),
        baseline=config["baseline"],
    shell:
        "python -m actlab.stats --summary {input:q} --out-dir {params.out_dir:q}"
        " --baseline {params.baseline:q} > {log:q} 2>&1"
