"""The engine: K >= 1 models of one architecture trained as ONE batched computation, one LightningModule.

A single run is K=1. The K models are stacked (actlab.stacked_mlp for the MLP: batched matmuls and a
hand-written backward; actlab.stacked_vmap for any other model: the CNN through actlab.stacked_cnn,
grouped convolutions, anything else through vmap). The K losses are summed (the gradient of the sum w.r.t. model k's slice is model k's
own gradient) and one optimizer steps the stacked parameters: Adam and SGD(+momentum) are
elementwise, so one optimizer over stacked tensors is exactly K optimizers. Weights are decayed;
biases and activation parameters (PReLU's slope) never. Models with learning rates of their own step
at the largest, each model's change then scaled to its own (optim.PerModelLR: exact, the step is
linear in lr); models with splits of their own gather their batches from the stacked splits
(batches.VecData).

With manual optimisation each Lightning training_step takes a chunk of ``trainer.steps_per_call``
mini-batches and loops over them, which amortises Lightning's per-step cost. Data stay on the device;
the step has no host sync (metrics accumulate on the device and come to the host once per epoch).
Grad-flow statistics of every model are computed here, on the stacked gradients (actlab.recorder
writes them).
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch import nn

from actlab import fastpaths, optim, probes
from actlab.losses import per_model_losses


class VecLitModel(pl.LightningModule):
    """K stacked models, their losses and one optimizer; manual optimisation, `chunk` steps a call."""

    def __init__(
        self,
        net: nn.Module,
        task: str,
        optim_cfg,
        max_epochs: int,
        grad_flow_every: int | None = None,
        compile: bool = False,
        lrs: list[float] | None = None,
    ):
        super().__init__()
        self.net, self.task, self.optim_cfg, self.max_epochs = net, task, optim_cfg, max_epochs
        # lrs: each model's own learning rate (optim.PerModelLR), or None: all optim_cfg.lr
        self.lrs = list(lrs) if lrs is not None and len(set(lrs)) > 1 else None
        self.automatic_optimization = False
        self.k = net.k
        self.grad_flow_every = grad_flow_every
        self.step_count = 0  # optimizer steps, as GradFlow counts them
        self.grad_flow: list[tuple[int, int, torch.Tensor]] = []  # (step, epoch, (4, L, K)) this epoch
        self.last_step_stats: tuple[int, int, torch.Tensor] | None = None
        self.compiled = compile
        self._loss_fn = torch.compile(self._losses, dynamic=False) if compile else self._losses
        self._sums: dict[str, list] = {}
        self._reset("train"), self._reset("val"), self._reset("test")
        self.epoch_means: dict[str, torch.Tensor] = {}

    # Metric accumulators, on the device (no host sync per step): per stage, [sum of loss x batch size
    # (K,), number correct (K,), samples]. A plain dict: nn.Module.__setattr__ costs microseconds.
    def _reset(self, stage: str) -> None:
        self._sums[stage] = [None, None, 0]  # (+ the means' dtype once the first batch is in)

    def _accumulate(self, stage: str, losses: torch.Tensor, correct: torch.Tensor | None, b: int) -> None:
        sums = self._sums[stage]
        if sums[0] is None:
            # float64 sums on CPU; on a GPU the losses' dtype (float64 under 64-true), at least float32
            dtype = torch.float64 if losses.device.type == "cpu" else torch.promote_types(losses.dtype, torch.float32)
            sums[0], sums[1] = (torch.zeros(self.k, dtype=dtype, device=losses.device) for _ in range(2))
            sums.append(torch.promote_types(losses.dtype, torch.float32))  # the means' dtype (see _finish)
            if correct is None:
                sums[1].fill_(math.nan)
        sums[0].add_(losses.detach(), alpha=b)
        if correct is not None:
            sums[1].add_(correct)
        sums[2] += b

    def _finish(self, stage: str) -> None:
        loss, correct, n, *dtype = self._sums[stage]
        if loss is not None:
            # (2, K): mean loss, accuracy; rounded to the models' dtype as Lightning's means of a single
            # run are (float32 runs: float32; 64-true: float64, never rounded to float32)
            self.epoch_means[stage] = (torch.stack([loss, correct]) / n).to(dtype[0])
        self._reset(stage)

    def _losses(self, x, y, shared: bool):
        return per_model_losses(self.net(x, shared=shared), y, self.task, shared)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["step_count"] = self.step_count

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.step_count = int(checkpoint["step_count"])

    def on_fit_start(self) -> None:
        if self.device.type == "cpu":
            fastpaths.keep_freed_memory()
        dm = self.trainer.datamodule
        # (N, ...) the training split, or (S*N, ...) the S splits of models with their own (batches.VecData),
        # model k's indices offset by train_offset[k] (K, 1)
        self._x, self._y, self._offset = dm.train_x, dm.train_y, dm.train_offset
        self._steps_per_epoch = math.ceil(len(dm.splits.x_train) / dm.batch_size)
        self._params = [p for ps in self.net.decay_groups() for p in ps]  # weights first
        self._step = fastpaths.DirectStep(self.optimizers().optimizer, self._params)
        if self.lrs is not None:
            step = optim.PerModelLR(self._params, self.net.param_rows(), self.lrs, max(self.lrs))
            direct = self._step
            self._step = lambda grads: step(direct, grads)
        # The hand-written backward where it applies: fp32 or fp64 (autocast would change the ops' dtypes),
        # not compiled, every activation in ACT_BACKWARD. Otherwise autograd.
        self._hand = (
            self.net.hand_backward()
            and not self.compiled
            and str(self.trainer.precision) in ("32-true", "32", "64-true", "64")
        )

    def training_step(self, batch, batch_idx):
        epoch = self.current_epoch + 1
        n_weights = len(self.net.weights)
        s = self.step_count
        for idx in batch:  # (K, b) indices, one row per model
            k, b = idx.shape
            flat = (idx if self._offset is None else idx + self._offset).reshape(-1)
            x = torch.index_select(self._x, 0, flat).view(k, b, *self._x.shape[1:])
            y = torch.index_select(self._y, 0, flat).view(k, b, *self._y.shape[1:])
            if self._hand:
                losses, correct, grads = self.net.losses_and_grads(x, y, self.task)
            else:
                losses, correct = self._loss_fn(x, y, False)
                # Plain gradients: single device, and no loss scaling (fp16 is refused by checks.vectorizable()).
                grads = torch.autograd.grad(losses.sum(), self._params)
            s += 1
            record = self.grad_flow_every is not None and (
                s == 1 or s % self.grad_flow_every == 0 or s % self._steps_per_epoch == 0
            )
            if record:
                before = [w.detach().clone() for w in self.net.weights]
            self._step(grads)
            if record:
                after = [w.detach() for w in self.net.weights]
                stats = probes.grad_flow_stats(grads[:n_weights], before, after)  # (5, L, K), GRAD_METRICS order
                if s == 1 or s % self.grad_flow_every == 0:
                    self.grad_flow.append((s, epoch, stats))
                if s % self._steps_per_epoch == 0:
                    self.last_step_stats = (s, epoch, stats)
            self._accumulate("train", losses, correct, b)
        self.step_count = s

    def on_train_epoch_start(self) -> None:
        self._reset("train")
        self.grad_flow = []

    def _eval_step(self, stage: str, batch) -> None:
        # one shared batch (B, ...) for all K models, or (K, B, ...): each model's own split
        x, y = batch
        shared = not getattr(self.trainer.datamodule, "per_model", False)
        losses, correct = self._losses(x, y, shared)
        self._accumulate(stage, losses, correct, x.shape[0] if shared else x.shape[1])

    def validation_step(self, batch, batch_idx):
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def test_step(self, batch, batch_idx):
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def finish_train_epoch(self) -> None:
        self._finish("train")

    def on_train_epoch_end(self) -> None:
        # after the callbacks (VecRecorder read this epoch's metrics at the same lr): the epoch schedule
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()

    def configure_optimizers(self):
        # models with their own lr: the optimizer steps at the largest, PerModelLR scales each model's step
        return optim.configure(self.net, self.optim_cfg, self.max_epochs, lr=max(self.lrs) if self.lrs else None)
