"""Lightning data modules over generated arrays (imports torch and Lightning: load it only to train)."""

from __future__ import annotations

from collections.abc import Iterator

import pytorch_lightning as pl
import torch
from torch import Tensor

from sweeplab.data._types import OperatorData

__all__ = ["InMemoryBatches", "OperatorDataModule"]


class InMemoryBatches:
    """Mini-batches sliced from tensors already in memory.

    A DataLoader over a TensorDataset indexes and collates sample by sample; slicing whole tensors with one
    index per batch does the same work in a single call, which matters for the small, fast steps of a sweep.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=self._generator)
            for start in range(0, n, self.batch_size):
                index = order[start : start + self.batch_size]
                yield self.x[index], self.y[index]
        else:
            for start in range(0, n, self.batch_size):
                yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]


class OperatorDataModule(pl.LightningDataModule):
    """Train/val/test splits of an OperatorData set, shuffled reproducibly by ``seed``.

    The test loaders are the test split at the training resolution, then the test samples at each of the data
    set's ``test_resolutions`` (in its order), with the evaluation batch scaled to the grid so that a
    batch holds about as many grid points as at the training resolution. ``time_window`` tells the task how to
    learn a time series (None: all outputs at once); ``physics``, the coefficients of the data's equation
    (physics losses read them).
    """

    def __init__(self, data: OperatorData, batch_size: int, seed: int = 0, eval_batch_size: int | None = None) -> None:
        super().__init__()
        self.data = data
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 100)
        self.seed = seed
        self.time_window = data.time_window
        self.physics = data.physics
        self.splits = {
            split: (torch.from_numpy(getattr(data, f"x_{split}")), torch.from_numpy(getattr(data, f"y_{split}")))
            for split in ("train", "val", "test")
        }
        self.test_at_resolution = {
            size: (torch.from_numpy(x), torch.from_numpy(y)) for size, (x, y) in data.test_at_resolution.items()
        }

    def train_dataloader(self) -> InMemoryBatches:
        return InMemoryBatches(*self.splits["train"], self.batch_size, shuffle=True, seed=self.seed)

    def val_dataloader(self) -> InMemoryBatches:
        return InMemoryBatches(*self.splits["val"], self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> list[InMemoryBatches]:
        loaders = [InMemoryBatches(*self.splits["test"], self.eval_batch_size, shuffle=False)]
        training_points = self.splits["test"][0][0, 0].numel()
        for x, y in self.test_at_resolution.values():
            batch_size = max(1, self.eval_batch_size * training_points // x[0, 0].numel())
            loaders.append(InMemoryBatches(x, y, batch_size, shuffle=False))
        return loaders
