# One rule per figure. Figures read only aggregated tables: restyling one reruns that figure alone
# (its script is an input), never a training run. Each writes PNG + SVG to results/figures/, its
# provenance (script, commit, inputs) in the files' metadata; the caption (workflow/report/*.rst)
# names the script and the experiment as the article does (params.experiment, from actlab.names).

from actlab import names as NAMES


# Plotting is light: run by Snakemake itself, never submitted to a cluster (profiles/slurm).
localrules:
    fig_activations,
    fig_learning_curves,
    fig_accuracy,
    fig_dead_units,
    fig_grad_flow,
    fig_depth,
    fig_accuracy_vs_dead,
    fig_across_depth,


rule fig_activations:
    """Figure 1: every activation and its derivative (autograd)."""
    input:
        script=SCRIPTS / "fig_activations.py",
        lib=SCRIPTS / "figlib.py",
    output:
        png=fig_report(FIGURES / "activations.png", "activations", "1 activations"),
        svg=FIGURES / "activations.svg",
    log:
        LOGS / "figures" / "activations.log",
    conda:
        ENV
    params:
        activations=config["activations"],
    shell:
        "python {input.script:q} --activations {params.activations:q}"
        " --out {output.png:q} {output.svg:q} > {log:q} 2>&1"


rule fig_learning_curves:
    """Figure 2: learning curves (error in %, linear axis), mean and 95% t-band across seeds, per activation."""
    input:
        script=SCRIPTS / "fig_learning_curves.py",
        lib=SCRIPTS / "figlib.py",
        curves=CURVES / "metrics.parquet",
    output:
        png=exp_report(EXP_FIG / "learning_curves.png", "learning_curves", "2 learning curves"),
        svg=EXP_FIG / "learning_curves.svg",
    log:
        EXP_LOG / "learning_curves.log",
    conda:
        ENV
    params:
        experiment=lambda w: experiment_label(w.experiment),
        activations=config["activations"],
        baseline=config["baseline"],
    shell:
        "python {input.script:q} --curves {input.curves:q} --experiment {wildcards.experiment:q}"
        " --label {params.experiment:q} --activations {params.activations:q} --baseline {params.baseline:q}"
        " --out {output.png:q} {output.svg:q} > {log:q} 2>&1"


rule fig_accuracy:
    """Figure 3: final test accuracy per activation: mean with 95% CI, seeds as dots."""
    input:
        script=SCRIPTS / "fig_accuracy.py",
        lib=SCRIPTS / "figlib.py",
        summary=RESULTS / "summary.parquet",
        accuracy=STATS / "accuracy.csv",
        vs_relu=STATS / "vs_relu.csv",
    output:
        png=exp_report(EXP_FIG / "accuracy.png", "accuracy", "3 accuracy"),
        svg=EXP_FIG / "accuracy.svg",
    log:
        EXP_LOG / "accuracy.log",
    conda:
        ENV
    params:
        experiment=lambda w: experiment_label(w.experiment),
        activations=config["activations"],
        baseline=config["baseline"],
    shell:
        "python {input.script:q} --summary {input.summary:q} --accuracy {input.accuracy:q}"
        " --vs-baseline {input.vs_relu:q} --experiment {wildcards.experiment:q} --label {params.experiment:q}"
        " --activations {params.activations:q} --baseline {params.baseline:q}"
        " --out {output.png:q} {output.svg:q} > {log:q} 2>&1"


rule fig_dead_units:
    """Figure 4: no-gradient and low-variance fraction over training, per hidden layer and activation."""
    input:
        script=SCRIPTS / "fig_dead_units.py",
        lib=SCRIPTS / "figlib.py",
        curves=CURVES / "dead_units.parquet",
    output:
        png=exp_report(EXP_FIG / "dead_units.png", "dead_units", "4 dead units"),
        svg=EXP_FIG / "dead_units.svg",
    log:
        EXP_LOG / "dead_units.log",
    conda:
        ENV
    params:
        experiment=lambda w: experiment_label(w.experiment),
        activations=config["activations"],
    shell:
        "python {input.script:q} --curves {input.curves:q} --experiment {wildcards.experiment:q}"
        " --label {params.experiment:q} --activations {params.activations:q}"
        " --out {output.png:q} {output.svg:q} > {log:q} 2>&1"


rule fig_grad_flow:
    """Figure 5: per-layer RMS gradient over training, one panel per weight layer, one line per activation."""
    input:
        script=SCRIPTS / "fig_grad_flow.py",
        lib=SCRIPTS / "figlib.py",
        curves=CURVES / "grad_flow.parquet",
    output:
        png=exp_report(EXP_FIG / "grad_flow.png", "grad_flow", "5 gradient flow"),
        svg=EXP_FIG / "grad_flow.svg",
    log:
        EXP_LOG / "grad_flow.log",
    conda:
        ENV
    params:
        experiment=lambda w: experiment_label(w.experiment),
        activations=config["activations"],
    shell:
        "python {input.script:q} --curves {input.curves:q} --experiment {wildcards.experiment:q}"
        " --label {params.experiment:q} --activations {params.activations:q}"
        " --out {output.png:q} {output.svg:q} > {log:q} 2>&1"


rule fig_depth:
    """Figure 6: born-dead probability vs depth, per width and activation, He vs RAI init."""
    input:
        script=SCRIPTS / "fig_depth.py",
        lib=SCRIPTS / "figlib.py",
        born_dead=DEPTH / "born_dead.csv",
    output:
        png=fig_report(FIGURES / "depth.png", "depth", "6 depth study"),
        svg=FIGURES / "depth.svg",
    log:
        LOGS / "figures" / "depth.log",
    conda:
        ENV
    shell:
        "python {input.script:q} --born-dead {input.born_dead:q}" " --out {output.png:q} {output.svg:q} > {log:q} 2>&1"


rule fig_accuracy_vs_dead:
    """Figure 7: test accuracy against the final no-gradient (and low-variance) fraction, one point per run."""
    input:
        script=SCRIPTS / "fig_accuracy_vs_dead.py",
        lib=SCRIPTS / "figlib.py",
        summary=RESULTS / "summary.parquet",
    output:
        png=exp_report(EXP_FIG / "accuracy_vs_dead.png", "accuracy_vs_dead", "7 accuracy vs dead units"),
        svg=EXP_FIG / "accuracy_vs_dead.svg",
    log:
        EXP_LOG / "accuracy_vs_dead.log",
    conda:
        ENV
    params:
        experiment=lambda w: experiment_label(w.experiment),
        activations=config["activations"],
    shell:
        "python {input.script:q} --summary {input.summary:q} --experiment {wildcards.experiment:q}"
        " --label {params.experiment:q} --activations {params.activations:q}"
        " --out {output.png:q} {output.svg:q} > {log:q} 2>&1"


rule fig_across_depth:
    """Figure 8: across network depth (every experiment of one dataset and model): accuracy, RMS
    gradient per layer, units passing no gradient."""
    input:
        script=SCRIPTS / "fig_across_depth.py",
        lib=SCRIPTS / "figlib.py",
        summary=RESULTS / "summary.parquet",
        grad_flow=CURVES / "grad_flow.parquet",
        dead_units=CURVES / "dead_units.parquet",
    output:
        png=report(
            GROUP_FIG / "across_depth.png",
            caption="../report/across_depth.rst",
            category="Figures",
            subcategory="{dataset} / {model}",
            labels={"figure": "8 across depth", "dataset": "{dataset}", "model": "{model}"},
        ),
        svg=GROUP_FIG / "across_depth.svg",
    log:
        LOGS / "figures" / "{dataset}-{model}" / "across_depth.log",
    conda:
        ENV
    params:
        experiment=lambda w: NAMES.experiment(w.dataset, w.model),
        activations=config["activations"],
    shell:
        "python {input.script:q} --summary {input.summary:q} --grad-flow {input.grad_flow:q}"
        " --dead-units {input.dead_units:q} --dataset {wildcards.dataset:q} --model {wildcards.model:q}"
        " --activations {params.activations:q} --out {output.png:q} {output.svg:q} > {log:q} 2>&1"
