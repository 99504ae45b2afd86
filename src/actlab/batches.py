"""The engine's data: all splits held on the device; per-model shuffled training batches by index."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch

from actlab.data import IndexBatches, Splits


class StackedBatches:
    """Per-model shuffled index batches: chunks of up to `chunk` (K, B) index tensors on `device`.
    Model k's order is the one `IndexBatches(shuffle=True, seed=seeds[k])` draws, epoch by epoch."""

    def __init__(self, n: int, batch_size: int, seeds: list[int], chunk: int, device):
        self.n, self.batch_size, self.chunk, self.device = n, batch_size, max(1, int(chunk)), device
        self.gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.n_batches = math.ceil(n / batch_size)

    def state_dict(self) -> dict:
        """The K data-order generators' states (saved in a resume checkpoint between epochs)."""
        return {"generators": [g.get_state() for g in self.gens]}

    def load_state_dict(self, state: dict) -> None:
        for g, st in zip(self.gens, state["generators"], strict=True):
            g.set_state(st)

    def __len__(self) -> int:
        return math.ceil(self.n_batches / self.chunk)

    def __iter__(self):
        order = torch.stack([torch.randperm(self.n, generator=g) for g in self.gens]).to(self.device)
        b = self.batch_size
        for c in range(0, self.n_batches, self.chunk):
            yield [order[:, i * b : (i + 1) * b] for i in range(c, min(c + self.chunk, self.n_batches))]


class VecData(pl.LightningDataModule):
    """All splits on the training device, in the dtype the precision plugin gives the model's inputs.
    Training batches are per-model index chunks (StackedBatches: model k's order is the one a run of
    seed k draws); evaluation batches are shared contiguous slices (IndexBatches): every model is
    evaluated on the same samples."""

    def __init__(self, splits: Splits, batch_size: int, seeds: list[int], chunk: int, eval_batch_size: int = 4096):
        super().__init__()
        self.splits, self.batch_size, self.eval_batch_size = splits, batch_size, eval_batch_size
        self.seeds, self.chunk = seeds, chunk
        self._train: StackedBatches | None = None
        self._train_state: dict | None = None  # from a checkpoint, applied when the loader is made

    # The data order generators' states go into a checkpoint (Lightning saves a datamodule's
    # state_dict), so a resumed run draws the same epoch orders as an uninterrupted one.
    def state_dict(self) -> dict:
        return {"train": self._train.state_dict()} if self._train is not None else {}

    def load_state_dict(self, state: dict) -> None:
        self._train_state = state.get("train")

    def setup(self, stage: str) -> None:
        # float64 under trainer.precision=64-true (the engine's step and the dead-units probe read these
        # tensors directly, not through Lightning's batch conversion), unchanged otherwise.
        device = self.trainer.strategy.root_device
        dtype = self.trainer.precision_plugin.convert_input(self.splits.x_train[:1]).dtype
        if self.splits.x_train.device != device or self.splits.x_train.dtype != dtype:
            self.splits = self.splits.to(device, dtype)

    def train_dataloader(self):
        self._train = StackedBatches(
            len(self.splits.x_train), self.batch_size, self.seeds, self.chunk, self.splits.x_train.device
        )
        if self._train_state is not None:
            self._train.load_state_dict(self._train_state)
        return self._train

    def val_dataloader(self):
        return IndexBatches(self.splits.x_val, self.splits.y_val, self.eval_batch_size, shuffle=False)

    def test_dataloader(self):
        return IndexBatches(self.splits.x_test, self.splits.y_test, self.eval_batch_size, shuffle=False)
