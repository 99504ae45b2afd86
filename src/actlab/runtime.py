"""Process-wide settings of a training job: logging, warnings, threads, deterministic mode, CUDA numerics."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import torch
from omegaconf import DictConfig


def setup_runtime(tr: DictConfig) -> bool:
    """Process-wide settings of a training job from the trainer config: quiet Lightning logs when not
    on a terminal, drop warnings that do not apply, torch threads, CUDA numerics. Returns `quiet`."""

    quiet = tr.progress == "quiet" or (tr.progress == "auto" and not sys.stdout.isatty())
    if quiet:
        for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # Per-step logging is off by design (epoch metrics only); a torch-internal deprecation raised inside
    # Lightning; no DataLoader workers by design (tensors on the device); a rerun or resumed run finds
    # Lightning's own logs/ from before (they are rewritten).
    for message in (
        ".*smaller than the logging interval.*",
        ".*isinstance\\(treespec, LeafSpec\\).*",
        ".*does not have many workers.*",
        ".*exists and is not empty. Previous log files.*",
    ):
        warnings.filterwarnings("ignore", message=message)
    if "SLURM_JOB_ID" not in os.environ:  # Lightning's hint to use srun, when srun is merely installed
        warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system.*")
    if tr.threads:
        torch.set_num_threads(int(tr.threads))
    if tr.deterministic:
        # Deterministic mode also fills every new tensor with NaN (a guard for kernels that read memory
        # they never wrote). Our kernels write every element they return, so this is a memset of each
        # fresh buffer: ~5 % of a vectorised step (the gathered batch). Bit-identical reruns are tested.
        torch.utils.deterministic.fill_uninitialized_memory = False
    gpu_numerics(tr)
    return quiet


def gpu_numerics(tr: DictConfig) -> None:
    """CUDA numerics from the trainer config (no-op on CPU): TF32 only when asked for (torch's default
    for cuDNN convolutions is TF32 on: switched off here so fp32 means fp32), cuDNN autotuning off when
    deterministic (it picks algorithms by timing). Lightning's deterministic=True does the rest
    (torch.use_deterministic_algorithms; CUBLAS_WORKSPACE_CONFIG is set at import)."""

    if not torch.cuda.is_available():
        return
    tf32 = bool(tr.get("tf32"))
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if tr.deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
