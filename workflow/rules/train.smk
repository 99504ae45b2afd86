# Download the datasets that need it, then train every run of the sweep.


rule download:
    """Fetch and verify one dataset (python -m actlab.download NAME); the marker holds its report."""
    output:
        DATA_MARKS / "{dataset}.txt",
    conda:
        ENV
    log:
        LOGS / "download" / "{dataset}.log",
    shell:
        "python -m actlab.download {wildcards.dataset:q} > {output:q} 2> {log:q}"


if config["multi_seed"]:

    rule train:
        """All seeds of one (dataset, model, activation) in one process (one run dir per seed):
        importing torch + Lightning costs ~5 s, paid once per job instead of once per run."""
        input:
            data_marks,
        output:
            expand(RUN / "summary.json", seed=config["seeds"], allow_missing=True),
        params:
            overrides=group_overrides,
        conda:
            ENV
        log:
            (LOGS / "train" / GROUP_LOG).with_suffix(".log"),
        benchmark:
            (BENCH / "train" / GROUP_LOG).with_suffix(".tsv")
        threads: config["resources"]["threads"]
        resources:
            mem_mb=config["resources"]["mem_mb"],
            gpu=config["resources"]["gpu"],
            runtime=config["resources"]["runtime"] * len(config["seeds"]),
        shell:
            "python -m actlab.train {params.overrides:q} trainer.threads={threads} > {log:q} 2>&1"

else:

    rule train:
        """One run per job."""
        input:
            data_marks,
        output:
            RUN / "summary.json",
        params:
            overrides=run_overrides,
        conda:
            ENV
        log:
            LOGS / "train" / GROUP_LOG / "seed{seed}.log",
        benchmark:
            BENCH / "train" / GROUP_LOG / "seed{seed}.tsv"
        threads: config["resources"]["threads"]
        resources:
            mem_mb=config["resources"]["mem_mb"],
            gpu=config["resources"]["gpu"],
            runtime=config["resources"]["runtime"],
        shell:
            "python -m actlab.train {params.overrides:q} trainer.threads={threads} > {log:q} 2>&1"
