"""Datasets held whole as tensors on the training device and batched by index.

A loader returns a `Splits`: float inputs (N, C, H, W) or (N, D), targets (class indices, or
float (N, 1) for regression). Splits are fixed by ``data.split_seed``, which is separate from the
model seed, so every model seed sees the same train/val/test split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch


class DataError(ValueError):
    """Bad or unusable data: missing, truncated, corrupt or failing its checksum."""


@dataclass
class Splits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: str  # "classification" | "regression"
    num_outputs: int  # classes, or regression targets

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device, float_dtype: torch.dtype | None = None) -> "Splits":
        """The splits on `device`; with `float_dtype`, floating-point tensors (inputs, regression
        targets) also cast to it (class indices stay int64)."""
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, float_dtype) if float_dtype is not None and t.is_floating_point() else t.to(device)

        moved = {k: move(getattr(self, k)) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return Splits(**moved, task=self.task, num_outputs=self.num_outputs)


class IndexBatches:
    """Mini-batches of tensors already on the device, drawn by index; no DataLoader, no workers.

    The order is reshuffled every epoch from a generator seeded once, so the data order is a
    function of (seed, epoch) alone and two runs with the same seed see identical batches.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool,
                 seed: int = 0, drop_last: bool = False):
        self.x, self.y, self.batch_size, self.shuffle, self.drop_last = x, y, batch_size, shuffle, drop_last
        self.gen = torch.Generator().manual_seed(seed)  # on CPU: randperm then moves to the device

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def state_dict(self) -> dict:
        """The data-order generator's state (a uint8 tensor): saved in a checkpoint between epochs, so a
        resumed run draws the same remaining epoch orders as an uninterrupted one."""
        return {"generator": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["generator"])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=self.gen).to(self.x.device)
            for i in range(len(self)):
                idx = order[i * self.batch_size:(i + 1) * self.batch_size]
                yield self.x[idx], self.y[idx]
        else:  # contiguous slices are views: no gather at all
            for i in range(len(self)):
                sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
                yield self.x[sl], self.y[sl]


def _stratified_split(n_val: int, n_test: int, y: np.ndarray, seed: int):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    strat = y if y.dtype.kind in "iu" else None
    rest, test = train_test_split(idx, test_size=n_test, stratify=strat, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=None if strat is None else y[rest],
                                  random_state=seed)
    return train, val, test


def _standardise(x_train, *others):
    """Per-feature standardisation with statistics of the training split only (constant pixels
    keep std 1 instead of dividing by 0)."""
    mean = x_train.mean(0, keepdims=True)
    std = x_train.std(0, keepdims=True)
    std[std < 1e-8] = 1.0
    return [(a - mean) / std for a in (x_train, *others)]


def _as_splits(x, y, train, val, test, task, num_outputs, standardise=True) -> Splits:
    xs = [x[train], x[val], x[test]]
    if standardise:
        xs = _standardise(*xs)
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a))  # noqa: E731
    ys = [y[train], y[val], y[test]]
    return Splits(t(xs[0]).float(), t(ys[0]), t(xs[1]).float(), t(ys[1]), t(xs[2]).float(), t(ys[2]),
                  task, num_outputs)


def load_digits(cfg) -> Splits:
    """scikit-learn's bundled 8x8 digits (1797 images, ships with the package: works offline)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = d.images.astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = d.target.astype(np.int64)
    n = len(y)
    train, val, test = _stratified_split(round(n * cfg.val_fraction), round(n * cfg.test_fraction), y,
                                         cfg.split_seed)
    return _as_splits(x, y, train, val, test, "classification", 10)


def load_synthetic(cfg) -> Splits:
    """Generated tasks that train in seconds on a CPU.

    task=abs:    1-D regression y = |x|, x ~ U(-sqrt(3), sqrt(3)) (unit variance), Lu et al.'s target.
    task=spiral: 2-D two-armed spiral classification (2 classes), nonlinear but tiny.
    """
    rng = np.random.default_rng(cfg.split_seed)
    n = cfg.n_samples
    if cfg.task == "abs":
        x = rng.uniform(-math.sqrt(3), math.sqrt(3), size=(n, 1)).astype(np.float32)
        y = np.abs(x).astype(np.float32)
        task, k = "regression", 1
    elif cfg.task == "spiral":
        y = rng.integers(0, 2, size=n)
        r = rng.uniform(0.05, 1.0, size=n)
        theta = 3 * math.pi * r + math.pi * y
        x = np.stack([r * np.cos(theta), r * np.sin(theta)], 1) + rng.normal(0, cfg.noise, (n, 2))
        x, y, task, k = x.astype(np.float32), y.astype(np.int64), "classification", 2
    else:
        raise DataError(f"unknown synthetic task {cfg.task!r}; valid: abs, spiral")
    train, val, test = _stratified_split(round(n * cfg.val_fraction), round(n * cfg.test_fraction), y,
                                         cfg.split_seed)
    return _as_splits(x, y, train, val, test, task, k, standardise=False)


def load_idx(cfg) -> Splits:
    """MNIST / Fashion-MNIST from the four canonical IDX files (downloaded and verified)."""
    from actlab import download

    (xtr, ytr), (xte, yte) = download.load_idx_dataset(cfg)  # uint8 (N, 28, 28), int64 (N,)
    return _image_splits(xtr[:, None], ytr, xte[:, None], yte, cfg)


def load_cifar10(cfg) -> Splits:
    """CIFAR-10 from the binary version (no pickle), downloaded and verified."""
    from actlab import download

    (xtr, ytr), (xte, yte) = download.load_cifar10(cfg)  # uint8 (N, 3, 32, 32), int64 (N,)
    return _image_splits(xtr, ytr, xte, yte, cfg)


def _image_splits(xtr, ytr, xte, yte, cfg) -> Splits:
    """The publisher's test set is the test split; validation is a stratified part of train."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(ytr))
    train, val = train_test_split(idx, test_size=cfg.val_size, stratify=ytr, random_state=cfg.split_seed)
    # Scale to [0, 1], then standardise with the training split's global mean/std (per channel).
    x_train, x_val, x_test = (a.astype(np.float32) / 255.0 for a in (xtr[train], xtr[val], xte))
    axes = (0, 2, 3)
    mean, std = x_train.mean(axes, keepdims=True), x_train.std(axes, keepdims=True)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return Splits(t((x_train - mean) / std), t(ytr[train]), t((x_val - mean) / std), t(ytr[val]),
                  t((x_test - mean) / std), t(yte), "classification", 10)


LOADERS = {"digits": load_digits, "synthetic": load_synthetic, "idx": load_idx, "cifar10": load_cifar10}


def load(cfg) -> Splits:
    """Load the dataset described by a ``conf/data/*.yaml`` config (dispatch on ``cfg.loader``)."""
    try:
        loader = LOADERS[cfg.loader]
    except KeyError:
        raise DataError(f"unknown data loader {cfg.loader!r}; valid: {', '.join(sorted(LOADERS))}") from None
    return loader(cfg)
