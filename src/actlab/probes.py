"""Probes: dead/dormant/saturated units and gradient flow, as Lightning callbacks (the per-unit
measures themselves: actlab.units, pure torch).

Switched on from config (conf/probes/default.yaml): ``probes.dead_units.enabled`` and
``probes.grad_flow.enabled``. Both write tidy CSV tables into the run directory.

Definitions
-----------
Notation: for hidden activation layer ``act<l>`` with pre-activation z (the input of the
activation module) and output h = f(z); a *unit* is one feature of an MLP layer, or one channel
of a conv layer (statistics then reduce over samples N and positions H, W). f'(z) is computed by
autograd through the activation module itself (the gradient of sum f(z) w.r.t. z), so every
registered activation works, PReLU with its current learned slope included; for ReLU torch's
subgradient at 0 is 0. Measured on a fixed probe set X: the first ``probe_size`` samples of the
validation split, in eval mode (the previous train/eval flags are restored), forward under
torch.no_grad.

dead_units.csv (columns epoch, layer, metric, value); epoch 0 = at initialisation (on_train_start),
epoch e = after e training epochs (every ``every_n_epochs``, and always after the last epoch):
  dead_fraction      fraction of units with |f'(z)| <= tol for every x in X (and every position).
                     ReLU: the unit outputs 0 on the whole probe set. For leaky_relu/prelu (a != 0)
                     it is 0 by construction.
  dormant_fraction   tau-dormant (Sokar et al. 2023): s_i = E|h_i| / mean_j E|h_j| <= tau, E over X
                     (and positions). If every E|h_j| is 0, every unit is dormant. Reported for
                     every activation; it is the informative one when f' never vanishes.
  saturated_fraction only for saturating activations (tanh, sigmoid): fraction of units with
                     |z| > spec.saturate_at for every x in X (and every position).
  The three above are the literature's definitions, kept for comparison with it; they cannot compare
  families: an ELU unit is dead only if z < -13.8 on every input, and units stuck on a flat part of
  ELU/SELU (|h| ~ alpha) or tanh/sigmoid (|h| ~ 1) are never tau-dormant. The two measures below
  can be non-zero for every activation:
  no_gradient_fraction  fraction of units with |f'(z)| <= eps * peak|f'| for every x in X (and every
                     position), eps = NO_GRADIENT_EPS = 0.01 and peak|f'| = `actlab.units.peak_slope(activation)`,
                     the activation's own largest slope over the reals (1 for ReLU, tanh, ELU; 0.25
                     for sigmoid; lambda * alpha = 1.758 for SELU; 1.13 for GELU): a unit that passes
                     at most 1% of the gradient its activation can pass, on every input. It is dead
                     for ReLU and saturated for tanh/sigmoid; Leaky ReLU's negative slope (0.01 of
                     its peak) sits on the threshold and counts, so a Leaky ReLU unit negative on
                     every input is in it too.
  low_variance_fraction fraction of units whose output varies little across the probe set: Var_X(h_i)
                     <= delta * mean_j Var_X(h_j) (variance over samples and positions, in float64),
                     delta = LOW_VARIANCE_DELTA = 0.01 = tau^2, i.e. a standard deviation at most a
                     tenth of the layer's typical one, the tau-dormant threshold on the scale of
                     variation instead of magnitude. A constant output carries no information about
                     the input whatever its value (0, -alpha or +-1). If every variance is 0, every
                     unit counts (as for dormant).
  mean_activation    mean of h over X, units and positions.
  mean_abs_grad      mean of |f'(z)| over X, units and positions.
  active_per_sample  mean over x in X of the fraction of units with |f'(z)| > tol at x (a conv
                     channel is active on x when it is active at any position).
  n_units, probe_size, tol, tau, saturate_at, eps, peak_slope, delta: the constants used, repeated
                     per row group so each table is self-describing.

grad_flow.csv (columns step, epoch, layer, metric, value), per weight layer (fc1.., conv1.., out;
the layer's ``weight`` only, biases excluded). ``step`` counts optimizer steps, 1 = the first;
``epoch`` is the 1-based epoch the step belongs to (as in metrics.csv). Recorded at step 1, every
``every_n_steps`` steps and at the last step:
  grad_norm          ||g||_2 of the weight gradient g = dL/dW of that step (the .grad the optimizer
                     receives; taken before any Lightning gradient clipping).
  grad_abs_mean      mean |g| = ||g||_1 / numel.
  weight_norm        ||W||_2 before the optimizer step.
  update_ratio       ||W_after - W_before||_2 / ||W_before||_2 for that optimizer step.
  grad_rms           root mean square of g = ||g||_2 / sqrt(numel): the typical size of one weight's
                     gradient, comparable between layers of different shapes (grad_norm grows with
                     the square root of the number of weights); the measure to follow across depth.
  grad_norm_first_over_last  (layer "<first>/<last>", e.g. "fc1/out"): grad_norm of the first weight
                     layer divided by that of the last. Kept for comparison with the literature; it
                     mixes gradient size with matrix size (a 64x128 against a 128x10 matrix).
  grad_rms_first_over_last   the same ratio of grad_rms: the per-weight gradient of the first layer
                     relative to the last's, free of the matrices' sizes.

Cost: dead units = one forward pass over X per measurement, one host sync. Gradient flow = one
fused copy of the weights and their gradients before every optimizer step (no host sync): Lightning
clears .grad before on_train_end, and the last step is only known once training ends, so every step
keeps what the last one needs and the last step is recorded exactly. On probe steps all norms go
into one tensor and to the CPU once. Tables are rewritten atomically (actlab.atomic.write_csv) at
most every ``flush_seconds`` and always when training ends.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn

from actlab import activations, atomic
from actlab.checks import check_probes
from actlab.units import measure_units

DEAD_COLUMNS = ["epoch", "layer", "metric", "value"]
GRAD_COLUMNS = ["step", "epoch", "layer", "metric", "value"]


def _net(pl_module: nn.Module) -> nn.Module:
    """The plain nn.Sequential a module wraps as `.model` (the recorder's per-model view), or the module itself."""
    return getattr(pl_module, "model", pl_module)


class CsvTable:
    """A table of rows (a probe's; a run's metrics.csv: actlab.recorder.MetricsTable), written to `path`
    atomically at most every `flush_seconds`, not fsynced; always when forced, fsynced (the run's end)."""

    columns: list[str]
    path: Path
    rows: list[dict]
    flush_seconds: float
    _last_write: float

    def flush(self, force: bool) -> None:
        now = time.monotonic()
        if self.rows and (force or now - self._last_write >= self.flush_seconds):
            atomic.write_csv(self.path, pd.DataFrame(self.rows, columns=self.columns), durable=force)
            self._last_write = now


class DeadUnits(CsvTable, pl.Callback):
    """Dead, tau-dormant and saturated units per hidden activation layer -> dead_units.csv.

    probe_x: the probe inputs; default = the first probe_size samples of the datamodule's
    validation split (``trainer.datamodule.splits.x_val``), fixed for the whole run.
    """

    columns = DEAD_COLUMNS

    def __init__(
        self,
        path: Path,
        activation: str,
        probe_size: int = 512,
        every_n_epochs: int = 1,
        tol: float = 1e-6,
        tau: float = 0.1,
        probe_x: torch.Tensor | None = None,
        flush_seconds: float = 30.0,
    ):
        activations.spec(activation)  # fail early on an unknown name
        self.path, self.activation = Path(path), activation
        self.probe_size, self.every, self.tol, self.tau = probe_size, every_n_epochs, tol, tau
        self.probe_x, self.flush_seconds = probe_x, flush_seconds
        self.rows: list[dict] = []
        self._measured: set[int] = set()
        self._epochs_done = 0
        self._last_write = -float("inf")

    def _probe(self, trainer, device) -> torch.Tensor:
        if self.probe_x is None:
            splits = getattr(getattr(trainer, "datamodule", None), "splits", None)
            if splits is None or len(splits.x_val) == 0:
                raise ValueError("DeadUnits needs probe_x or a datamodule with a non-empty splits.x_val")
            self.probe_x = splits.x_val
        self.probe_x = self.probe_x[: self.probe_size].to(device)  # no-op after the first call
        return self.probe_x

    def measure(self, trainer, pl_module, epoch: int) -> None:
        x = self._probe(trainer, pl_module.device)
        for r in measure_units(_net(pl_module), x, self.activation, self.tol, self.tau):
            self.rows.append({"epoch": epoch, **r})
        self._measured.add(epoch)
        self.flush(force=False)

    # Rows so far travel in a resume checkpoint (actlab.checkpoint.ResumeCheckpoint).
    def state_dict(self) -> dict:
        return {
            "rows": [dict(r) for r in self.rows],
            "measured": sorted(self._measured),
            "epochs_done": self._epochs_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rows = [dict(r) for r in state["rows"]]
        self._measured, self._epochs_done = set(state["measured"]), int(state["epochs_done"])

    def on_train_start(self, trainer, pl_module):
        self._last_write = time.monotonic()  # first write after flush_seconds, or at the end
        if 0 not in self._measured:  # (measured already when resumed from a checkpoint)
            self.measure(trainer, pl_module, 0)

    def on_train_epoch_end(self, trainer, pl_module):
        self._epochs_done = trainer.current_epoch + 1
        if self._epochs_done % self.every == 0:
            self.measure(trainer, pl_module, self._epochs_done)

    def on_train_end(self, trainer, pl_module):
        if self._epochs_done not in self._measured:  # always the final state
            self.measure(trainer, pl_module, self._epochs_done)
        self.flush(force=True)


# ------------------------------------------------------------------------------------------------
# gradient flow


def grad_flow_stats(grads: list[torch.Tensor], before: list[torch.Tensor], after: list[torch.Tensor]) -> torch.Tensor:
    """(5, L, K) on the weights' device: grad_norm, grad_abs_mean, weight_norm, update_ratio, grad_rms of
    L weight tensors of K stacked models, each (K, *the layer's shape), given the step's gradients and
    each weight before and after the step (one model: add a leading K=1 dim)."""
    g2 = torch.stack([g.flatten(1).norm(dim=1) for g in grads])  # (L, K)
    g1 = torch.stack([g.flatten(1).abs().sum(1) / g[0].numel() for g in grads])  # mean |g| = ||g||_1 / numel
    w2 = torch.stack([w.flatten(1).norm(dim=1) for w in before])
    dw = torch.stack([(w - w0).flatten(1).norm(dim=1) for w, w0 in zip(after, before)])
    rms = torch.stack([n / g[0].numel() ** 0.5 for n, g in zip(g2, grads)])
    return torch.stack([g2, g1, w2, dw / w2, rms])


GRAD_METRICS = ("grad_norm", "grad_abs_mean", "weight_norm", "update_ratio", "grad_rms")


class GradFlow(CsvTable):
    """Per-weight-layer gradient norms and update-to-weight ratios -> grad_flow.csv. The engine
    (actlab.engine) computes the statistics of every model on the stacked step; this holds one
    model's rows and writes its table (actlab.recorder)."""

    columns = GRAD_COLUMNS

    def __init__(self, path: Path, every_n_steps: int = 25, flush_seconds: float = 30.0):
        self.path, self.every, self.flush_seconds = Path(path), every_n_steps, flush_seconds
        self.rows: list[dict] = []
        self.recorded = 0  # last step written to rows
        self._last_write = -float("inf")

    def add_rows(self, step: int, epoch: int, names: list[str], vals: torch.Tensor) -> None:
        """The rows of one step from its statistics on the host, vals (len(GRAD_METRICS), layers)."""
        for i, metric in enumerate(GRAD_METRICS):
            for j, name in enumerate(names):
                self.rows.append(
                    {"step": step, "epoch": epoch, "layer": name, "metric": metric, "value": vals[i, j].item()}
                )
        for i, metric in (
            (0, "grad_norm_first_over_last"),
            (GRAD_METRICS.index("grad_rms"), "grad_rms_first_over_last"),
        ):
            g = vals[i]
            self.rows.append(
                {
                    "step": step,
                    "epoch": epoch,
                    "layer": f"{names[0]}/{names[-1]}",
                    "metric": metric,
                    "value": (g[0] / g[-1]).item(),
                }
            )
        self.recorded = step


# ------------------------------------------------------------------------------------------------
# config


def callbacks(cfg_probes, run_dir: Path, activation: str) -> list:
    """The probe callbacks switched on in ``cfg_probes`` (the ``probes`` config group; its values
    checked by actlab.checks.check_probes)."""
    check_probes(cfg_probes)
    run_dir = Path(run_dir)
    out: list = []
    du = cfg_probes.get("dead_units") if cfg_probes is not None else None
    if du is not None and du.get("enabled", False):
        out.append(
            DeadUnits(
                run_dir / "dead_units.csv",
                activation,
                probe_size=du.get("probe_size", 512),
                every_n_epochs=du.get("every_n_epochs", 1),
                tol=float(du.get("tol", 1e-6)),
                tau=float(du.get("tau", 0.1)),
                flush_seconds=float(du.get("flush_seconds", 30.0)),
            )
        )
    gf = cfg_probes.get("grad_flow") if cfg_probes is not None else None
    if gf is not None and gf.get("enabled", False):
        every, flush = gf.get("every_n_steps", 25), gf.get("flush_seconds", 30.0)
        out.append(GradFlow(run_dir / "grad_flow.csv", every_n_steps=every, flush_seconds=float(flush)))
    return out
