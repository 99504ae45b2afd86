"""The optimiser of a training run: Adam or SGD + momentum over weight-decay groups, with the optional
per-epoch cosine schedule."""

from __future__ import annotations

import torch


def configure(net, cfg, max_epochs: int):
    """The optimizer (and schedule) of a stacked net (actlab.stacked_mlp / stacked_vmap), in the form
    `configure_optimizers` returns: its weights decayed by ``cfg.weight_decay``, its biases and activation
    parameters never (PReLU's slope: He et al. 2015 exclude it, decay would push it towards 0 = ReLU)."""
    decay, no_decay = net.decay_groups()
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if not cfg.weight_decay:  # the same hyperparameters: one group = one fused kernel call per step
        groups = [{"params": decay + no_decay, "weight_decay": 0.0}]
    dev = decay[0].device.type
    # Fused kernels: one pass over the stacked tensors (CPU and CUDA; float32 and float64, the dtypes
    # Lightning has converted the parameters to by now); elementwise, as per model.
    fused = {"fused": True} if dev in ("cpu", "cuda") and decay[0].dtype in (torch.float32, torch.float64) else {}
    return make_optimizer(groups, cfg, max_epochs, **fused)


def make_optimizer(groups: list[dict], cfg, max_epochs: int, **opt_kwargs):
    """Adam or SGD + momentum over `groups`, with the optional per-epoch cosine schedule, in the form
    `configure_optimizers` returns."""
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
