# The depth study (python -m actlab.depth): probability that a freshly initialised deep narrow MLP is
# born dead (a constant function), He vs RAI init, and how many collapse when trained. No training
# runs involved: it only depends on the sweep's `depth` settings (its params).


rule depth_study:
    output:
        born_dead=DEPTH / "born_dead.csv",
        collapse=DEPTH / "collapse.csv",
        collapse_nets=DEPTH / "collapse_nets.csv",
    log:
        LOGS / "depth_study.log",
    benchmark:
        BENCH / "depth_study.tsv"
    conda:
        ENV
    threads: config["depth"]["threads"]
    params:
        out_dir=DEPTH,
        args=depth_args,
        code=code_fingerprint("depth"),
    shell:
        "python -m actlab.depth --out-dir {params.out_dir:q} {params.args:q} --threads {threads} > {log:q} 2>&1"
