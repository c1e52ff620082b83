"""Augmentations in torch, drawn from their own seeded generator (reproducible, and independent of the global
random state that initialisation and shuffling use)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["FeatureDropout", "ImageAugment"]


class _Seeded(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        self._generator: torch.Generator | None = None

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device).manual_seed(self.seed)
        return self._generator


class ImageAugment(_Seeded):
    """Random translation by up to ``max_shift`` pixels (a random crop of the zero-padded image), pixel dropout
    with probability ``pixel_dropout`` and additive Gaussian noise of standard deviation ``noise_std``."""

    def __init__(self, max_shift: int, pixel_dropout: float, noise_std: float, seed: int = 0) -> None:
        super().__init__(seed)
        if max_shift < 0 or not 0 <= pixel_dropout < 1 or noise_std < 0:
            raise ValueError(
                f"need max_shift >= 0, 0 <= pixel_dropout < 1, noise_std >= 0; got {max_shift}, {pixel_dropout}, "
                f"{noise_std}"
            )
        self.max_shift, self.pixel_dropout, self.noise_std = max_shift, pixel_dropout, noise_std

    def forward(self, images: Tensor) -> Tensor:
        generator = self.generator(images.device)
        batch, _, height, width = images.shape
        if self.max_shift:
            s = self.max_shift
            padded = nn.functional.pad(images, (s, s, s, s))
            offsets = torch.randint(0, 2 * s + 1, (2, batch, 1), generator=generator, device=images.device)
            rows = offsets[0] + torch.arange(height, device=images.device)  # (batch, height)
            cols = offsets[1] + torch.arange(width, device=images.device)
            samples = torch.arange(batch, device=images.device)[:, None, None]
            images = padded[samples, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        if self.pixel_dropout:
            keep = torch.rand(images.shape, generator=generator, device=images.device) >= self.pixel_dropout
            images = images * keep
        if self.noise_std:
            images = images + self.noise_std * torch.randn(images.shape, generator=generator, device=images.device)
        return images


class FeatureDropout(_Seeded):
    """Sets each feature of a vector to zero with its own probability: one for all, or one per feature (to weaken
    chosen features, as in the "features with strengths" setting), plus Gaussian noise of ``noise_std``."""

    def __init__(self, probabilities: float | Sequence[float], noise_std: float = 0.0, seed: int = 0) -> None:
        super().__init__(seed)
        p = torch.as_tensor(probabilities, dtype=torch.float32)
        if p.ndim > 1 or ((p < 0) | (p >= 1)).any() or noise_std < 0:
            raise ValueError(f"dropout probabilities must be in [0, 1) and noise_std >= 0, got {probabilities}")
        self.register_buffer("probabilities", p, persistent=False)
        self.noise_std = noise_std

    def forward(self, x: Tensor) -> Tensor:
        if self.probabilities.ndim == 1 and self.probabilities.shape[0] != x.shape[1]:
            raise ValueError(f"{self.probabilities.shape[0]} dropout probabilities for {x.shape[1]} features")
        generator = self.generator(x.device)
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.probabilities
        x = x * keep
        if self.noise_std:
            x = x + self.noise_std * torch.randn(x.shape, generator=generator, device=x.device)
        return x
