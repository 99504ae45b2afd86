# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exploring the results table
#
# One row per training run (`results/summary.parquet`), written by `snakemake --cores all`. This
# notebook reads whatever results directory `$ACTLAB_RESULTS` names (default: the repository's
# `results/`), so it works on the default sweep, the paper sweep or the tiny test sweep.
# `jupytext --sync notebooks/explore_results.py` makes the paired `.ipynb` to open in Jupyter.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

REPO = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
RESULTS = Path(os.environ.get("ACTLAB_RESULTS") or REPO / "results")
if not RESULTS.is_absolute():
    RESULTS = (REPO / RESULTS).resolve()  # relative to the repository root, wherever the kernel starts
summary = pd.read_parquet(RESULTS / "summary.parquet")
print(f"{len(summary)} runs from {RESULTS}")
summary.head()

# %% [markdown]
# ## What was run

# %%
summary.groupby(["experiment", "dataset", "model", "activation"]).agg(
    seeds=("seed", "nunique"),
    epochs=("epochs", "max"),
    diverged=("diverged", "sum"),
    params=("n_params", "first"),
    init=("init", "first"),
)

# %% [markdown]
# ## Accuracy, dead and dormant units per activation
#
# Mean over seeds (the pipeline's confidence intervals are in `results/stats/accuracy.csv`).

# %%
per_act = (
    summary.groupby(["experiment", "dataset", "model", "activation"])[
        ["test_acc", "best_val_acc", "final_dead_fraction", "final_dormant_fraction", "seconds_per_epoch"]
    ]
    .mean()
    .sort_values("test_acc", ascending=False)
)
per_act.style.format(
    {
        "test_acc": "{:.2%}",
        "best_val_acc": "{:.2%}",
        "final_dead_fraction": "{:.1%}",
        "final_dormant_fraction": "{:.1%}",
        "seconds_per_epoch": "{:.3f}",
    }
)

# %%
stats = pd.read_csv(RESULTS / "stats" / "accuracy.csv")
acc = stats[stats["metric"] == "test_acc"][
    ["experiment", "dataset", "model", "activation", "n", "mean", "ci_low", "ci_high"]
]
acc.sort_values("mean", ascending=False)

# %% [markdown]
# ## Paired differences to ReLU (Holm-corrected)

# %%
vs = pd.read_csv(RESULTS / "stats" / "vs_relu.csv")
vs[
    ["experiment", "dataset", "model", "activation", "n_pairs", "mean_diff", "ci_low", "ci_high", "p_value", "p_holm"]
].sort_values("p_holm")

# %% [markdown]
# ## Seed-to-seed spread
#
# Every dot is one run: the spread within an activation is what the confidence intervals measure.

# %%
order = per_act.reset_index().sort_values("test_acc")["activation"].unique()
fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1))
sns.stripplot(data=summary, y="activation", x="test_acc", order=order, ax=ax, size=5)
ax.set_xlabel("test accuracy")
fig.tight_layout()

# %% [markdown]
# ## Dead units against accuracy

# %%
fig, ax = plt.subplots(figsize=(6, 4))
sns.scatterplot(data=summary, x="final_dormant_fraction", y="test_acc", hue="activation", ax=ax)
ax.set_xlabel("final dormant fraction")
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()

# %% [markdown]
# ## Learning curves of one activation

# %%
metrics = pd.read_parquet(RESULTS / "curves" / "metrics.parquet")
act = "relu" if "relu" in set(metrics["activation"]) else metrics["activation"].iloc[0]
one = metrics[metrics["activation"] == act]
fig, ax = plt.subplots(figsize=(6, 3.5))
sns.lineplot(data=one, x="epoch", y="val_acc", hue="seed", ax=ax, palette="crest")
ax.set_title(f"{act}: validation accuracy per seed")
fig.tight_layout()
