"""Supervised image classification: the task (cross-entropy, accuracy) and a small CNN classifier whose
regularisation (dropout, input noise, cutout) a self-tuning study or a sampler tunes."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from sweeplab_modules.representations import ConvEncoder
from sweeplab_modules.tasks._labelled import LabelledTask, labels_of
from sweeplab_modules.training import TrainingConfig

__all__ = ["Classification", "ConvClassifier"]


class ConvClassifier(nn.Module):
    """The representation zoo's ConvEncoder (conv, batch norm, ReLU, max pool blocks, global average pool), then
    ``hidden`` ReLU units and a linear read-out. Dropout sites for a study's ``at``: ``encoder.layers.<2 + 4k>``
    (the ReLU of block k) and ``head.1`` (the hidden ReLU)."""

    def __init__(
        self, in_channels: int, out_channels: int, width: int = 16, n_blocks: int = 2, hidden: int = 64
    ) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        self.encoder = ConvEncoder(in_channels, width, n_blocks)
        self.head = nn.Sequential(
            nn.Linear(self.encoder.feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))


class Classification(LabelledTask):
    """Cross-entropy on labelled images; logs ``<stage>_loss`` and, on validation and test, ``<stage>_acc``."""

    def __init__(self, model: nn.Module, training: TrainingConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(model, training, in_channels)

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        labels = labels_of(y)
        logits = self.model(self.normalised(x))
        loss = F.cross_entropy(logits, labels)
        self.log_epoch_mean(f"{stage}_loss", loss, len(x))
        if stage != "train":
            self.log_epoch_mean(f"{stage}_acc", (logits.argmax(dim=1) == labels).float().mean(), len(x))
        return loss
