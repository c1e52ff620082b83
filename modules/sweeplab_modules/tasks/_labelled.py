"""What the representation tasks share: labelled samples (one-hot targets), input standardisation from the
training split, and embedding a whole split with a frozen model."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.tasks.operator import ChannelNormalizer
from sweeplab_modules.training import TrainingConfig

__all__ = ["LabelledTask", "labels_of"]

_EMBED_BATCH = 500


def labels_of(targets: Tensor) -> Tensor:
    """Class indices from one-hot targets: (samples, classes) or (samples, classes, 1, 1) for images."""
    return targets.flatten(start_dim=1).argmax(dim=1)


class LabelledTask(SweepTask):
    """Base of the tasks on labelled samples ``(x, one-hot y)``. Images are standardised per channel with
    training statistics; vectors are used as given (per-feature standardisation would erase the feature
    strengths that the synthetic setting is about)."""

    LOSSES: tuple[str, ...] = ("cross_entropy",)

    def __init__(self, model: nn.Module, training: TrainingConfig, in_channels: int) -> None:
        super().__init__(model, training)
        self.input_normalizer = ChannelNormalizer(in_channels)

    def setup(self, stage: str) -> None:
        if stage == "fit":
            x, _ = self.trainer.datamodule.splits["train"]
            if x.ndim > 2:
                self.input_normalizer.fit(x)

    def normalised(self, x: Tensor) -> Tensor:
        return self.input_normalizer.encode(x) if x.ndim > 2 else x

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """Normalised inputs and class indices of a whole split, on this module's device."""
        x, y = self.trainer.datamodule.splits[name]
        return self.normalised(x.to(self.device)), labels_of(y).to(self.device)

    @torch.no_grad()
    def embed(self, function: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """``function`` over ``x`` in batches, in eval mode (the training mode is restored after)."""
        was_training = self.model.training
        self.model.eval()
        try:
            return torch.cat([function(batch) for batch in x.split(_EMBED_BATCH)])
        finally:
            self.model.train(was_training)
