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
# # The depth study: born-dead networks
#
# `results/depth/born_dead.csv` (from `python -m actlab.depth`, rule `depth_study`): for each
# activation, initialisation, depth and width, how many of `trials` freshly initialised networks
# are a constant function of their input, with a 95% Wilson interval and, for ReLU with He init,
# theoretical bounds. `$ACTLAB_RESULTS` selects the results directory (absolute, or relative to the
# repository root).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

REPO = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
RESULTS = Path(os.environ.get("ACTLAB_RESULTS") or REPO / "results")
if not RESULTS.is_absolute():
    RESULTS = (REPO / RESULTS).resolve()  # relative to the repository root, wherever the kernel starts
born = pd.read_csv(RESULTS / "depth" / "born_dead.csv")
born.head()

# %% [markdown]
# ## P(born dead) by width and depth

# %%
born.pivot_table(index=["activation", "init", "width"], columns="depth", values="p_born_dead").round(3)

# %% [markdown]
# ## Measured against the theoretical band (ReLU, He init)

# %%
he = born[(born["activation"] == "relu") & (born["init"] == "he")].copy()
he["inside_band"] = (he["ci_low"] <= he["theory_high"]) & (he["ci_high"] >= he["theory_low"])
he[["width", "depth", "trials", "p_born_dead", "ci_low", "ci_high", "theory_low", "theory_high", "inside_band"]]

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for w, g in he.groupby("width"):
    (line,) = ax.plot(g["depth"], g["p_born_dead"], marker="o", label=f"width {w}")
    ax.fill_between(g["depth"], g["theory_low"], g["theory_high"], color=line.get_color(), alpha=0.15)
ax.set_xscale("log")
ax.set_xlabel("depth (hidden layers)")
ax.set_ylabel("P(born dead)")
ax.set_title("ReLU, He init: measured (points) and theoretical band")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## Collapse after training

# %%
collapse_path = RESULTS / "depth" / "collapse.csv"
pd.read_csv(collapse_path) if collapse_path.exists() else "no collapse study in this sweep"
