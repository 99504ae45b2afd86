# Controlled compute cost of each activation (python -m actlab.timing), for the article's claim (d):
# seconds per training epoch of the main experiment's model (the sweep's first experiment), every
# activation of the sweep in ONE process, interleaved round-robin, after warm-up, torch on a fixed
# number of threads (helpers: timing_* in common.smk). The training runs' own seconds per epoch
# (stats/compute.csv) cannot decide it: they are taken while other jobs load the machine.


rule timing:
    """Median seconds per training epoch (and per activation call alone) per activation, 95% CIs of
    the medians and ratios to the baseline (ReLU)."""
    input:
        lambda wildcards: data_marks(timing_experiment()),
    output:
        STATS / "timing.csv",
    log:
        LOGS / "timing.log",
    benchmark:
        BENCH / "timing.tsv"
    conda:
        ENV
    threads: timing_cores()
    resources:  # a retry gets 2x, then 3x (runtime: the profile's default-resources, which scale too)
        mem_mb=lambda wildcards, attempt: config["resources"]["mem_mb"] * attempt,
        gpu=config["resources"]["gpu"],
    params:
        args=timing_args,
        code=code_fingerprint("timing"),
    shell:
        "python -m actlab.timing --out {output:q} {params.args:q} > {log:q} 2>&1"
