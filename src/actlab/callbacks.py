"""Small Lightning callbacks the training run always uses."""
from __future__ import annotations

import math
import time

import pandas as pd
import pytorch_lightning as pl

from actlab import atomic


class EpochRecorder(pl.Callback):
    """Per-epoch tidy metrics (metrics.csv), a quiet line per epoch, and divergence detection.

    Reads the epoch-averaged metrics Lightning accumulated on the device: one host sync per epoch.
    A non-finite training loss stops the run and marks it diverged (a result, not a crash).
    """

    KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")

    def __init__(self, path, quiet: bool):
        self.path, self.quiet, self.rows = path, quiet, []

    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        m = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch + 1}
        row.update({k: float(m[k]) if k in m else math.nan for k in self.KEYS})
        row["seconds"] = time.perf_counter() - self._t0
        self.rows.append(row)
        atomic.write_csv(self.path, pd.DataFrame(self.rows))
        if not math.isfinite(row["train_loss"]):
            pl_module.diverged = True
            trainer.should_stop = True
        if self.quiet:
            print(f"epoch {row['epoch']:>3}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}"
                  f"  val_acc {row['val_acc']:.4f}  {row['seconds']:.2f}s", flush=True)
