"""Operator learning: map input functions to output functions on a grid (FNO, U-Net, MgNO, ...)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sweeplab_modules.losses import relative_l2
from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.training import TrainingConfig

__all__ = ["ChannelNormalizer", "OperatorLearning"]


class ChannelNormalizer(nn.Module):
    """Per-channel standardisation fitted on the training split, stored as buffers so it travels with the model.

    Per channel rather than per grid point (the FNO reference code's choice) so the same statistics apply at
    every resolution: a model trained on one grid can be tested on another.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    @torch.no_grad()
    def fit(self, samples: Tensor) -> ChannelNormalizer:
        reduce = [d for d in range(samples.ndim) if d != 1]
        self.mean.copy_(samples.mean(dim=reduce))
        self.std.copy_(samples.std(dim=reduce).clamp_min(1e-12))
        return self

    def _shape(self, x: Tensor) -> list[int]:
        return [1, -1] + [1] * (x.ndim - 2)

    def encode(self, x: Tensor) -> Tensor:
        return (x - self.mean.view(self._shape(x))) / self.std.view(self._shape(x))

    def decode(self, x: Tensor) -> Tensor:
        return x * self.std.view(self._shape(x)) + self.mean.view(self._shape(x))


class OperatorLearning(SweepTask):
    """Trains ``model`` on normalised inputs/outputs; losses and metrics are computed in physical units.

    Logs ``<stage>_loss`` and ``<stage>_rel_l2`` (relative L2 error, the FNO paper's metric) per epoch.
    """

    LOSSES = ("rel_l2", "mse")

    def __init__(self, model: nn.Module, training: TrainingConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(model, training)
        self.loss_name = training.loss or "rel_l2"
        if self.loss_name not in self.LOSSES:
            raise ValueError(f"loss must be one of {self.LOSSES}, got {self.loss_name!r}")
        self.input_normalizer = ChannelNormalizer(in_channels)
        self.output_normalizer = ChannelNormalizer(out_channels)

    def setup(self, stage: str) -> None:
        # Normalisation statistics come from the training split only (the data module exposes its tensors).
        if stage == "fit":
            x, y = self.trainer.datamodule.splits["train"]
            self.input_normalizer.fit(x)
            self.output_normalizer.fit(y)

    def forward(self, x: Tensor) -> Tensor:
        return self.output_normalizer.decode(self.model(self.input_normalizer.encode(x)))

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        prediction = self(x)
        error = relative_l2(prediction, y)
        loss = error if self.loss_name == "rel_l2" else torch.mean((prediction.float() - y.float()) ** 2)
        # Epoch means only: a per-step log would cost a device sync and a database row every step.
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        if stage != "train":
            self.log(f"{stage}_rel_l2", error, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss
