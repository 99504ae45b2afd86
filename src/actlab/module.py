"""The LightningModule (one model, its loss and optimiser) and the tensor DataModule."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from actlab.data import IndexBatches, Splits


class TensorData(pl.LightningDataModule):
    """All splits live on the training device as tensors; batches are index slices of them."""

    def __init__(self, splits: Splits, batch_size: int, seed: int, eval_batch_size: int = 4096):
        super().__init__()
        self.splits, self.batch_size, self.seed, self.eval_batch_size = splits, batch_size, seed, eval_batch_size
        self._train: IndexBatches | None = None
        self._train_state: dict | None = None  # from a checkpoint, applied when the loader is made

    # The data order generator's state goes into a checkpoint (Lightning saves a datamodule's
    # state_dict), so a resumed run draws the same epoch orders as an uninterrupted one.
    def state_dict(self) -> dict:
        return {"train": self._train.state_dict()} if self._train is not None else {}

    def load_state_dict(self, state: dict) -> None:
        self._train_state = state.get("train")

    def setup(self, stage: str) -> None:
        # On the device, in the dtype the precision plugin gives the model's inputs: float64 under
        # trainer.precision=64-true (the vectorised step and the dead-units probe read these tensors
        # directly, not through Lightning's batch conversion), unchanged otherwise.
        device = self.trainer.strategy.root_device
        dtype = self.trainer.precision_plugin.convert_input(self.splits.x_train[:1]).dtype
        if self.splits.x_train.device != device or self.splits.x_train.dtype != dtype:
            self.splits = self.splits.to(device, dtype)

    def train_dataloader(self):
        s = self.splits
        self._train = IndexBatches(s.x_train, s.y_train, self.batch_size, shuffle=True, seed=self.seed)
        if self._train_state is not None:
            self._train.load_state_dict(self._train_state)
        return self._train

    def val_dataloader(self):
        return IndexBatches(self.splits.x_val, self.splits.y_val, self.eval_batch_size, shuffle=False)

    def test_dataloader(self):
        return IndexBatches(self.splits.x_test, self.splits.y_test, self.eval_batch_size, shuffle=False)


class LitModel(pl.LightningModule):
    """Cross-entropy (or MSE for regression), Adam or SGD + momentum, optional cosine schedule."""

    def __init__(self, model: nn.Module, task: str, optim_cfg, max_epochs: int):
        super().__init__()
        self.model, self.task, self.optim_cfg, self.max_epochs = model, task, optim_cfg, max_epochs
        self.diverged = False

    def forward(self, x):
        return self.model(x)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["diverged"] = self.diverged

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.diverged = bool(checkpoint.get("diverged", False))

    def _step(self, batch, stage: str):
        x, y = batch
        out = self.model(x)
        if self.task == "regression":
            loss = F.mse_loss(out, y)
        else:
            loss = F.cross_entropy(out, y)
            # Accumulated on the device by Lightning: no host sync per step.
            # float32 (bf16-mixed: not bf16), float64 under 64-true: a float64 run is float64 throughout
            acc_dtype = torch.promote_types(out.dtype, torch.float32)
            self.log(f"{stage}_acc", (out.argmax(1) == y).to(acc_dtype).mean(), on_step=False, on_epoch=True)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        cfg = self.optim_cfg
        # Weight decay only on Linear/Conv weights: never on biases or on activation parameters
        # (PReLU's slope a; He et al. 2015 exclude it, decay would push a towards 0 = ReLU).
        act_params = {id(p) for n, m in self.model.named_children() if n.startswith("act") for p in m.parameters()}
        decay, no_decay = [], []
        for p in self.model.parameters():
            (no_decay if p.ndim <= 1 or id(p) in act_params else decay).append(p)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return make_optimizer(groups, cfg, self.max_epochs)


def make_optimizer(groups: list[dict], cfg, max_epochs: int, **opt_kwargs):
    """Adam or SGD + momentum over `groups`, with the optional per-epoch cosine schedule, in the form
    `configure_optimizers` returns (shared by LitModel and the vectorised trainer)."""
    if cfg.name == "adam":
        opt = torch.optim.Adam(groups, lr=cfg.lr, **opt_kwargs)
    elif cfg.name == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum or 0.0, **opt_kwargs)
    else:
        raise ValueError(f"unknown optimizer {cfg.name!r}; valid: adam, sgd")
    if cfg.schedule == "none":
        return opt
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
    raise ValueError(f"unknown schedule {cfg.schedule!r}; valid: none, cosine")
