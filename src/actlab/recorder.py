"""The engine's one recorder: each model's metrics.csv rows, divergence and probes, at each epoch end.

Probes: every model gets its own dead_units.csv (actlab.probes.DeadUnits, measured on a per-model
view: the model's slice copied into a `models.build()`-shaped module) and grad_flow.csv (the
statistics the engine computed on the stacked gradients, written by actlab.probes.GradFlow's table).
A model whose epoch train loss diverges (actlab.losses.diverged) is marked so then, its rows stop
there, the others train on (NaNs never cross model slices).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch import nn

from actlab import probes
from actlab.losses import diverged


class _View:
    """What a probe callback needs of a pl_module: `.model` (model k as a plain module), `.device`."""

    def __init__(self, model: nn.Module, device):
        self.model, self.device = model, device


# metrics.csv of runs in training is rewritten at most this often (atomically, not fsynced), and always,
# fsynced, when a run ends. Why not every epoch: K runs x 2 fsyncs each epoch cost ~6 ms per run and
# epoch, ~10% of a MNIST-1D epoch; the resume checkpoint holds the rows anyway.
METRICS_FLUSH_SECONDS = 30.0


class MetricsTable(probes.CsvTable):
    """A run's metrics.csv, one row per epoch, written as the probe tables are (actlab.probes): at most
    every `flush_seconds` while training, not fsynced; fsynced when forced, at the run's end. Its first
    row goes to disk at once (a run in training shows its file from the first epoch)."""

    columns = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]

    def __init__(self, path: Path, flush_seconds: float):
        self.path, self.rows, self.flush_seconds = Path(path), [], flush_seconds
        self._last_write = -math.inf


class VecRecorder(pl.Callback):
    """Per-model metrics.csv rows, divergence, and the probes of every model, at each epoch end."""

    def __init__(self, cfgs: list[DictConfig], views: list[nn.Module], quiet: bool, chance: float | list[float]):
        # chance: the divergence rule's chance loss of each model's own training split (or one for all)
        self.cfgs, self.views, self.quiet = cfgs, views, quiet
        self.chance = list(chance) if isinstance(chance, (list, tuple)) else [chance] * len(cfgs)
        self.k = len(cfgs)
        self.metrics = [MetricsTable(Path(c.run_dir) / "metrics.csv", METRICS_FLUSH_SECONDS) for c in cfgs]
        self.active = [True] * self.k
        self.diverged = [False] * self.k
        self.finished = [False] * self.k
        self.epoch_probes: list[list[pl.Callback]] = []
        # Each model's GradFlow keeps its rows and writes its table; its statistics come from the
        # stacked step (VecLitModel), not from its own hooks.
        self.grad_flow: list[probes.GradFlow | None] = []
        for c in cfgs:
            cbs = probes.callbacks(c.probes, Path(c.run_dir), c.activation.name)
            gf = [cb for cb in cbs if isinstance(cb, probes.GradFlow)]
            self.epoch_probes.append([cb for cb in cbs if not isinstance(cb, probes.GradFlow)])
            self.grad_flow.append(gf[0] if gf else None)

    @property
    def rows(self) -> list[list[dict]]:
        """Each model's metrics.csv rows so far (its summary.json is made from them)."""
        return [t.rows for t in self.metrics]

    # Everything recorded so far travels in a resume checkpoint: rows, divergence, the probes' rows.
    def state_dict(self) -> dict:
        return {
            "rows": [[dict(r) for r in rows] for rows in self.rows],
            "active": list(self.active),
            "diverged": list(self.diverged),
            "finished": list(self.finished),
            "grad_flow": [
                None if g is None else {"rows": [dict(r) for r in g.rows], "recorded": g.recorded}
                for g in self.grad_flow
            ],
            "epoch_probes": [[cb.state_dict() for cb in cbs] for cbs in self.epoch_probes],
        }

    def load_state_dict(self, state: dict) -> None:
        if len(state["rows"]) != self.k:
            raise ValueError(f"checkpoint holds {len(state['rows'])} models, this run {self.k}")
        for t, rows in zip(self.metrics, state["rows"], strict=True):
            t.rows = [dict(r) for r in rows]
        self.active, self.diverged = list(state["active"]), list(state["diverged"])
        self.finished = list(state["finished"])
        for g, saved in zip(self.grad_flow, state["grad_flow"]):
            if g is not None and saved is not None:
                g.rows, g.recorded = [dict(r) for r in saved["rows"]], int(saved["recorded"])
        for cbs, saved in zip(self.epoch_probes, state["epoch_probes"]):
            for cb, st in zip(cbs, saved):
                cb.load_state_dict(st)

    def grad_flow_every(self) -> int | None:
        everies = {g.every for g in self.grad_flow if g is not None}
        if len(everies) > 1:
            raise ValueError("vectorised models must share probes.grad_flow.every_n_steps")
        return everies.pop() if everies else None

    def _view(self, k: int, pl_module) -> _View:
        # in the stacked model's dtype (float64 under 64-true: a float32 view would round the weights)
        view = self.views[k].to(pl_module.device, pl_module.dtype)
        return _View(pl_module.net.copy_into(k, view), pl_module.device)

    def on_train_start(self, trainer, pl_module):
        dm = getattr(trainer, "datamodule", None)
        for k in range(self.k):
            for cb in self.epoch_probes[k]:
                if isinstance(cb, probes.DeadUnits) and cb.probe_x is None and hasattr(dm, "splits_of"):
                    x_val = dm.splits_of(k).x_val  # model k's own validation split
                    cb.probe_x = x_val if len(x_val) else None  # (empty: DeadUnits says so)
                cb.on_train_start(trainer, self._view(k, pl_module))

    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.finish_train_epoch()
        epoch = trainer.current_epoch + 1
        seconds = (time.perf_counter() - self._t0) / self.k  # each model's share of the epoch
        nan = torch.full((2, self.k), math.nan, device=pl_module.device)
        tr, va = pl_module.epoch_means.get("train", nan), pl_module.epoch_means.pop("val", nan)
        # the one host sync of the epoch: metrics and the grad-flow statistics of every model
        gf_steps = pl_module.grad_flow
        gf = torch.stack([s for _, _, s in gf_steps]) if gf_steps else None
        last = pl_module.last_step_stats
        host = torch.cat([tr, va]).double().cpu().tolist()
        gf_host = gf.double().cpu() if gf is not None else None
        last_host = (last[0], last[1], last[2].double().cpu()) if last is not None else None
        done_now = []
        for k in range(self.k):
            if not self.active[k]:
                continue
            row = {
                "epoch": epoch,
                "train_loss": host[0][k],
                "train_acc": host[1][k],
                "val_loss": host[2][k],
                "val_acc": host[3][k],
                "seconds": seconds,
            }
            self.metrics[k].rows.append(row)
            self.metrics[k].flush(force=False)
            if self.k == 1 and trainer.logger is not None:
                trainer.logger.log_metrics({m: v for m, v in row.items() if m != "epoch"}, step=epoch)
            if diverged(row["train_loss"], self.chance[k]):  # the single run's rule (actlab.callbacks)
                self.diverged[k] = True
                self.active[k] = False
                done_now.append(k)
            for cb in self.epoch_probes[k]:
                cb.on_train_epoch_end(trainer, self._view(k, pl_module))
            g = self.grad_flow[k]
            if g is not None:
                for (s, e, _), stats in zip(gf_steps, gf_host if gf_host is not None else []):
                    g.add_rows(s, e, self.layer_names, stats[..., k])  # stats (4, L, K)
                g.flush(force=False)
        for k in done_now:  # a diverged model ends here, as its single run would
            self._finish_model(k, trainer, pl_module, last_host)
        if self.quiet and self.k == 1:
            r = self.rows[0][-1]
            print(
                f"epoch {epoch:>3}  train_loss {r['train_loss']:.4f}  val_loss {r['val_loss']:.4f}"
                f"  val_acc {r['val_acc']:.4f}  {seconds:.2f}s",
                flush=True,
            )
        elif self.quiet:
            live = [k for k in range(self.k) if self.active[k] or k in done_now]
            tl = [host[0][k] for k in live]
            va_acc = [host[3][k] for k in live]
            print(
                f"epoch {epoch:>3}  K={self.k}  train_loss {min(tl):.4f}..{max(tl):.4f}"
                f"  val_acc {min(va_acc):.4f}..{max(va_acc):.4f}  diverged {sum(self.diverged)}"
                f"  {seconds:.2f}s/model",
                flush=True,
            )
            self._progress(epoch, trainer.max_epochs)
        if not any(self.active):
            trainer.should_stop = True
        self._last_host = last_host

    PROGRESS_EVERY = 15.0  # seconds between progress lines on stderr (the pipeline's terminal)

    def _progress(self, epoch: int, max_epochs: int) -> None:
        """A line with the time left on stderr, at most every PROGRESS_EVERY s and at the last epoch:
        a long vectorised job shows that it moves (the per-epoch lines above go to the job's log)."""
        now = time.perf_counter()
        if not hasattr(self, "_since"):  # (time, epoch) this process started from (a resume starts late)
            self._since, self._said = (self._t0, epoch - 1), self._t0
        if epoch < max_epochs and now - self._said < self.PROGRESS_EVERY:
            return
        self._said = now
        (t0, e0) = self._since
        left = (now - t0) / max(epoch - e0, 1) * (max_epochs - epoch)
        where = Path(self.cfgs[0].run_dir).parent.parent
        print(
            f"train {where}: {self.k} runs, epoch {epoch}/{max_epochs}, ~{left:.0f} s left", file=sys.stderr, flush=True
        )

    def on_train_end(self, trainer, pl_module):
        for k in range(self.k):
            if not self.finished[k]:
                self._finish_model(k, trainer, pl_module, getattr(self, "_last_host", None))

    def _finish_model(self, k, trainer, pl_module, last_host) -> None:
        self.metrics[k].flush(force=True)
        for cb in self.epoch_probes[k]:
            cb.on_train_end(trainer, self._view(k, pl_module))
        g = self.grad_flow[k]
        if g is not None:
            if last_host is not None and last_host[0] > g.recorded:
                step, epoch, stats = last_host
                g.add_rows(step, epoch, self.layer_names, stats[..., k])
            g.flush(force=True)
        self.finished[k] = True
