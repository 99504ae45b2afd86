"""`python -m actlab.train activation=gelu seed=0 ...`: a training run, configured by Hydra (actlab.cli).

Several runs in one process: `seeds=[0,1,2,3,4]` and/or `activations=[relu,gelu,...]` train every
seed x activation and write one complete run directory per run (``run_dir`` resolved per run),
exactly as `python -m actlab.train seed=S activation=A` would. Every run, alone or not, goes through
the one engine (actlab.engine): a single run is K=1, a job trains its runs as engine runs of up to
``vectorize_max_k`` models (``vectorize=false``: one after the other, bit-identical to single runs).

A single run's dir is Hydra's output dir (``run_dir`` or ``hydra.run.dir``: either moves every file).
It holds:
  config.yaml     the fully resolved config (.hydra/: Hydra's own; train.log: the run's log)
  metrics.csv     one row per epoch: train/val loss and accuracy, seconds (logs/: Lightning's copy)
  dead_units.csv, grad_flow.csv   the probes (actlab.probes), when enabled
  SHA256SUMS      the integrity record: SHA-256 of each file above and of summary.json (actlab.integrity)
  summary.json    written last, atomically: its presence means the run finished
  last.ckpt       while training: the resume checkpoint (every ``trainer.checkpoint_every_n_epochs``
                  epochs and at the end of training; deleted once the job's summaries are written).
                  A rerun of the same command resumes from it; see docs/reliability.md. A job of
                  several runs keeps its one stacked checkpoint in the job's ``hydra.run.dir`` instead
                  (last.ckpt, or last-part<i>of<n>.ckpt per engine run).

This module is the entry point; it re-exports the names callers use (tests, benchmarks,
workflow/rules/common.smk) from the modules that define them.
"""

from __future__ import annotations

import os

# Deterministic cuBLAS needs this set before CUDA initialises (harmless on CPU).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

# The names a training job is used by (tests, benchmarks, workflow/rules/common.smk), from their modules.
from actlab.cli import check_composes, check_job, check_values, job_dirs, main  # noqa: E402,F401
from actlab.config import (  # noqa: E402,F401
    CONF_DIR,
    GROUPS,
    act_params,
    choices,
    config_hash,
    job_configs,
    job_dir,
    validate,
)
from actlab.errors import ConfigError  # noqa: E402,F401
from actlab.rundir import _LOCKS, LOCK_FILE, lock_dirs  # noqa: E402,F401
from actlab.runner import CHECKPOINT, run, run_seeds, vectorized_parts  # noqa: E402,F401
from actlab.runtime import setup_runtime  # noqa: E402,F401
from actlab.summary import make_summary  # noqa: E402,F401

if __name__ == "__main__":
    main()
