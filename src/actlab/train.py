"""Training runs, configured by Hydra: `python -m actlab.train activation=gelu seed=0 ...`.

Several seeds in one process: `python -m actlab.train seeds=[0,1,2,3,4] activation=gelu ...` trains
each seed and writes one complete run directory per seed (``run_dir`` resolved with that seed),
exactly as `python -m actlab.train seed=S` would; Hydra's own files (.hydra/, train.log of the whole
job) then go to ``hydra.run.dir``, which the caller should pass (default: `job_dir`).
`activations=[relu,gelu,...]` likewise trains every activation (x every seed) in one process. By default
(``vectorize=auto``) the seeds train together as one batched model (actlab.vectorized; same results
to floating-point tolerance); ``vectorize=false`` trains them one after the other (bit-identical).

Writes into the run directory (``hydra.run.dir``, = ``run_dir`` in conf/config.yaml):
  config.yaml     the fully resolved config
  metrics.csv     one row per epoch: train/val loss and accuracy, seconds
  dead_units.csv, grad_flow.csv   the probes (actlab.probes), when enabled
  SHA256SUMS      the integrity record: SHA-256 of each file above and of summary.json (actlab.integrity)
  summary.json    written last, atomically: its presence means the run finished
  last.ckpt       while training: the resume checkpoint (every ``trainer.checkpoint_every_n_epochs``
                  epochs and at the end of training; deleted once the job's summaries are written).
                  A rerun of the same command resumes from it; see docs/reliability.md. A vectorised
                  job (several runs as one model) keeps its one stacked checkpoint in the job's
                  ``hydra.run.dir`` instead (last.ckpt, or last-part<i>of<n>.ckpt per vectorised part).
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
