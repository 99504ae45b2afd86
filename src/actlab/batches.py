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


class PerModelBatches:
    """Evaluation batches when the models have splits of their own: contiguous slices of the S stacked
    splits x (S, N, ...), y (S, N, ...), each model given its own split's samples (an index_select of
    the (K,) `split_of` over dim 0): x (K, b, ...), y (K, b, ...), for the engine's per-model
    (`shared=False`) path. The same samples, in the same order, as the split's own IndexBatches."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, split_of: torch.Tensor, batch_size: int):
        self.x, self.y, self.split_of, self.batch_size = x, y, split_of, batch_size

    def __len__(self) -> int:
        return math.ceil(self.x.shape[1] / self.batch_size)

    def __iter__(self):
        for i in range(len(self)):
            sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
            yield self.x[:, sl].index_select(0, self.split_of), self.y[:, sl].index_select(0, self.split_of)


class VecData(pl.LightningDataModule):
    """All splits on the training device, in the dtype the precision plugin gives the model's inputs.
    Training batches are per-model index chunks (StackedBatches: model k's order is the one a run of
    seed k draws); evaluation batches are shared contiguous slices (IndexBatches): every model is
    evaluated on the same samples.

    Models with splits of their own (`splits` a list of S splits of equal sizes, `split_of[k]` model
    k's): the S training sets are concatenated, (S*N, ...), and model k's (K, B) index row is offset by
    split_of[k] * N (`train_offset`, (K, 1)), so a training batch stays one gather; evaluation gives
    every model its own split (PerModelBatches, `per_model`). One split: exactly the shared path."""

    def __init__(
        self,
        splits: Splits | list[Splits],
        batch_size: int,
        seeds: list[int],
        chunk: int,
        eval_batch_size: int = 4096,
        split_of: list[int] | None = None,
    ):
        super().__init__()
        self.split_list = [splits] if isinstance(splits, Splits) else list(splits)
        self.split_of = list(split_of) if split_of is not None else [0] * len(seeds)
        if len(self.split_of) != len(seeds) or not all(0 <= j < len(self.split_list) for j in self.split_of):
            raise ValueError(
                f"split_of {self.split_of} does not fit {len(seeds)} models and {len(self.split_list)} splits"
            )
        self.splits = self.split_list[0]
        self.per_model = len(self.split_list) > 1
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seeds, self.chunk = seeds, chunk
        self._train: StackedBatches | None = None
        self._train_state: dict | None = None  # from a checkpoint, applied when the loader is made
        self.train_x, self.train_y, self.train_offset = self.splits.x_train, self.splits.y_train, None

    def splits_of(self, k: int) -> Splits:
        """Model k's own splits (on the device once set up)."""
        return self.split_list[self.split_of[k]]

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
        self.split_list = [
            s if s.x_train.device == device and s.x_train.dtype == dtype else s.to(device, dtype)
            for s in self.split_list
        ]
        self.splits = self.split_list[0]
        self.train_x, self.train_y = self.splits.x_train, self.splits.y_train
        if self.per_model:
            n = len(self.splits.x_train)
            self.train_x = torch.cat([s.x_train for s in self.split_list])  # (S*N, ...)
            self.train_y = torch.cat([s.y_train for s in self.split_list])
            self.train_offset = (torch.tensor(self.split_of, device=device) * n).view(-1, 1)  # (K, 1)
            self._index = torch.tensor(self.split_of, device=device)  # (K,)
            self._stacked = {
                stage: tuple(torch.stack([getattr(s, f"{v}_{stage}") for s in self.split_list]) for v in "xy")
                for stage in ("val", "test")
            }  # (S, N_stage, ...)

    def train_dataloader(self):
        self._train = StackedBatches(
            len(self.splits.x_train), self.batch_size, self.seeds, self.chunk, self.splits.x_train.device
        )
        if self._train_state is not None:
            self._train.load_state_dict(self._train_state)
        return self._train

    def _eval(self, stage: str):
        if self.per_model:
            return PerModelBatches(*self._stacked[stage], self._index, self.eval_batch_size)
        return IndexBatches(
            getattr(self.splits, f"x_{stage}"), getattr(self.splits, f"y_{stage}"), self.eval_batch_size, shuffle=False
        )

    def val_dataloader(self):
        return self._eval("val")

    def test_dataloader(self):
        return self._eval("test")
