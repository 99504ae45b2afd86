"""The resume checkpoint of a training run (design in docs/reliability.md)."""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import Checkpoint

from actlab import atomic
from actlab.config import config_hash

log = logging.getLogger(__name__)


def rng_state() -> dict:
    """The global RNG states (torch CPU and CUDA, numpy, random) in types that load with
    torch.load(weights_only=True). Training draws nothing from them today (the data order has its
    own generator, saved by the DataModule); saved so that a future use stays resumable."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def resume_point(path: Path, config_hash: str) -> tuple[Path | None, int]:
    """(path, epochs done) if ``path`` is a checkpoint of this very config, else (None, 0).

    A checkpoint of another config (its stored hash differs), or one that cannot be read, is deleted
    with a one-line notice on stderr: the run starts over. Read with weights_only=True (tensors and
    plain containers only: loading never runs code from the file)."""
    path = Path(path)
    if not path.is_file():
        return None, 0
    why = None
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("actlab") or {}
        if meta.get("config_hash") != config_hash:
            why = "it was written for a different config"
    except Exception as e:  # truncated, corrupt, not a checkpoint: never fatal, start over
        why = f"it cannot be read ({type(e).__name__})"
    if why:
        print(f"note: not resuming from {path}: {why}; starting over", file=sys.stderr, flush=True)
        log.info("not resuming from %s: %s; starting over", path, why)
        path.unlink(missing_ok=True)
        return None, 0
    return path, int(meta["epoch"])


class ResumeCheckpoint(Checkpoint):
    """Saves the whole training state to ``path`` (atomically: temp file + rename) at the end of
    every ``every_n_epochs``-th epoch and once when training ends; `trainer.fit(ckpt_path=path)`
    resumes from it (the Trainer needs ``enable_checkpointing=True``, and then gets no other checkpoint
    callback).

    Being a `Checkpoint`, Lightning calls it after every other callback and after the LightningModule's
    own on_train_epoch_end (the vectorised trainer steps its schedule there), the place Lightning's
    ModelCheckpoint saves from and its loops resume from: the epoch's metrics rows and probes are in,
    the next epoch's data order is not drawn yet. Its final save (on_train_end) holds the flushed probes,
    so a job interrupted after training resumes without training again. Stored with it: the config hash
    (see resume_point), the epochs done, the training seconds so far, whether training had stopped
    (divergence) and the global RNG states; the other callbacks, the module and the DataModule store
    their own state (state_dict / on_save_checkpoint).
    """

    def __init__(self, path, every_n_epochs: int, config_hash: str, label: str = ""):
        self.path, self.every, self.config_hash = Path(path), int(every_n_epochs), config_hash
        self.label = label or str(self.path.parent)
        self.resumed_from = 0  # epochs done when the checkpoint this run resumed from was saved
        self.prior_seconds = 0.0  # training seconds before this process (from the checkpoint)
        self._stopped = False
        self._t0 = time.perf_counter()
        self._epoch = 0

    def train_seconds(self) -> float:
        """Training seconds of this run, earlier processes included (time lost to an interruption after
        the last checkpoint is not counted: that work is redone and counted then)."""
        return self.prior_seconds + (time.perf_counter() - self._t0)

    def state_dict(self) -> dict:
        return {
            "epoch": self._epoch,
            "train_seconds": self.train_seconds(),
            "stopped": self._stopped,
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.resumed_from = int(state["epoch"])
        self.prior_seconds = float(state["train_seconds"])
        self._stopped = bool(state["stopped"])
        set_rng_state(state["rng"])

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["actlab"] = {"config_hash": self.config_hash, "epoch": self._epoch}

    def on_train_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()
        if self._stopped:  # resumed from the final checkpoint of a run that stopped early (diverged)
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer, pl_module):
        done = trainer.current_epoch + 1
        # Not after the last epoch (or a divergence): training ends now and on_train_end saves the state
        # with the probes' final rows. A checkpoint of a finished loop is resumed without running any
        # hook, so it must hold everything.
        last = done >= trainer.max_epochs or trainer.should_stop
        if self.every > 0 and done % self.every == 0 and done != self.resumed_from and not last:
            self.save(trainer, done)

    def on_train_end(self, trainer, pl_module):
        self._stopped = bool(trainer.should_stop)
        self.save(trainer, trainer.current_epoch)

    def save(self, trainer, epochs_done: int) -> None:
        self._epoch = epochs_done
        with atomic.atomic_path(self.path) as tmp:
            trainer.save_checkpoint(tmp)
        log.info("checkpoint: %s: saved after epoch %d -> %s", self.label, epochs_done, self.path)


def resume_checkpoint(cfgs: list[DictConfig], path: Path, label: str):
    """(ResumeCheckpoint callback or None, ckpt_path to resume from or None) for the runs ``cfgs``
    trained together, checkpointed at ``path``."""
    every = cfgs[0].trainer.get("checkpoint_every_n_epochs", 0)
    if not every:
        return None, None
    digest = config_hash(cfgs)
    ckpt, epoch = resume_point(path, digest)
    if ckpt is not None:
        log.info("resume: %s: resuming from %s (after epoch %d)", label, ckpt, epoch)
    else:
        log.info("resume: %s: training from scratch", label)
    return ResumeCheckpoint(path, every, digest, label=label), ckpt
