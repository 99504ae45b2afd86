"""The optimiser of a training run: Adam or SGD + momentum over weight-decay groups, with the optional
per-epoch cosine schedule."""

from __future__ import annotations

import torch


def configure(net, cfg, max_epochs: int, lr: float | None = None):
    """The optimizer (and schedule) of a stacked net (actlab.stacked_mlp / stacked_vmap), in the form
    `configure_optimizers` returns: its weights decayed by ``cfg.weight_decay``, its biases and activation
    parameters never (PReLU's slope: He et al. 2015 exclude it, decay would push it towards 0 = ReLU).
    ``lr``: instead of ``cfg.lr`` (the reference learning rate of models with their own: PerModelLR)."""
    decay, no_decay = net.decay_groups()
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if not cfg.weight_decay:  # the same hyperparameters: one group = one fused kernel call per step
        groups = [{"params": decay + no_decay, "weight_decay": 0.0}]
    dev = decay[0].device.type
    # Fused kernels: one pass over the stacked tensors (CPU and CUDA; float32 and float64, the dtypes
    # Lightning has converted the parameters to by now); elementwise, as per model.
    fused = {"fused": True} if dev in ("cpu", "cuda") and decay[0].dtype in (torch.float32, torch.float64) else {}
    return make_optimizer(groups, cfg, max_epochs, lr=lr, **fused)


def make_optimizer(groups: list[dict], cfg, max_epochs: int, lr: float | None = None, **opt_kwargs):
    """Adam or SGD + momentum over `groups`, with the optional per-epoch cosine schedule, in the form
    `configure_optimizers` returns."""
    lr = cfg.lr if lr is None else lr
    if cfg.name == "adam":
        opt = torch.optim.Adam(groups, lr=lr, **opt_kwargs)
    elif cfg.name == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum or 0.0, **opt_kwargs)
    else:
        raise ValueError(f"unknown optimizer {cfg.name!r}; valid: adam, sgd")
    if cfg.schedule == "none":
        return opt
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
    raise ValueError(f"unknown schedule {cfg.schedule!r}; valid: none, cosine")


class PerModelLR:
    """One optimizer step of K stacked models, each with its own learning rate lrs[k].

    The optimizer steps every model with the reference rate lr_ref = max(lrs); then model k's parameter
    change is scaled by lrs[k] / lr_ref: p = p_before + (p_after - p_before) * ratio, ratio a (K, 1, ...)
    broadcast over dim 0 (a stacked parameter's models: `rows`, (0, K), or an activation group's slice
    for its own parameters). Exact, not an approximation: for a given gradient history the change of a
    step is lr x (a term that does not depend on lr), and the state does not depend on lr either:
    - Adam: m, v are moving averages of the gradients (with L2 weight decay, of g + wd p, p the model's
      own parameters): change = -lr (m_hat / (sqrt(v_hat) + eps) + 0); AdamW's decoupled decay adds
      -lr wd p: also lr x (an lr-free term);
    - SGD (+ momentum, dampening, nesterov, L2 decay): buf = mu buf + g (g + wd p): change = -lr buf;
    - the cosine schedule multiplies every group's lr by the same factor each epoch, so the ratio holds.
    So the stacked step equals K optimizers with their own lr, up to rounding (one multiply and the
    subtraction of p_before: ~1 ulp of p per step; tests/test_vectorized.py compares in float64).
    The fused kernels (fastpaths.DirectStep) still make the step."""

    def __init__(self, params: list[torch.Tensor], rows: list[tuple[int, int]], lrs: list[float], lr_ref: float):
        ratios = torch.tensor([lr / lr_ref for lr in lrs], dtype=torch.float64)  # (K,)
        self.params = params
        with torch.no_grad():
            # (K or k_group, *p.shape[1:]) each: the factor of every element of the parameter
            self.scale = [
                ratios[a:b].to(p.device, p.dtype).view(-1, *[1] * (p.dim() - 1)).expand_as(p).contiguous()
                for p, (a, b) in zip(params, rows, strict=True)
            ]
            self.before = [torch.empty_like(p) for p in params]

    @torch.no_grad()
    def __call__(self, step, grads) -> None:
        ps = [p.data for p in self.params]
        torch._foreach_copy_(self.before, ps)
        step(grads)
        torch._foreach_sub_(ps, self.before)  # the change at lr_ref
        torch._foreach_mul_(ps, self.scale)  # ... at model k's own lr
        torch._foreach_add_(ps, self.before)
