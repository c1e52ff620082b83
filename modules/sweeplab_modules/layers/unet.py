"""U-Net encoder and decoder on 2D grids, shared by the U-Net baseline and the Latent Spectral Model.

The classic U-Net (Ronneberger, Fischer, Brox 2015) in the form the neural-operator literature uses as a
baseline and as LSM's backbone (Wu et al. 2023, code thuml/Latent-Spectral-Models and
thuml/Neural-Solver-Library): ``n_scales`` resolutions with ``width * 2 ** l`` channels at scale ``l``, each
stage a double ``3x3 conv -> norm -> ReLU``, 2x2 max-pooling down, bilinear (corner-aligned) upsampling up,
skip connections by concatenation. With bilinear upsampling the coarsest scale keeps the channels of the one
above it (``width * 2 ** (n_scales - 2)``) and every decoder stage halves its concatenated input in its first
convolution, as in the reference code.

The encoder returns the feature map of every scale, finest first, so that a model can transform the skips
before the decoder consumes them (LSM applies a neural spectral block to each).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sweeplab_modules.layers.grid import append_grid_coordinates
from sweeplab_modules.layers.validation import check_grid_input

__all__ = [
    "NORMALIZATIONS",
    "DoubleConv",
    "LiftedUNet",
    "UNetDecoder",
    "UNetEncoder",
    "crop_to",
    "pad_to_multiple",
    "unet_channels",
]

Normalization = Literal["batch", "instance", "none"]
NORMALIZATIONS: tuple[str, ...] = ("batch", "instance", "none")


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad the high end of the last two dims of ``x`` up to the next multiple of ``multiple``.

    Undo with ``crop_to``. The U-Net halves the grid ``n_scales - 1`` times (and LSM also splits every scale
    into whole patches), so the padded grid divides exactly at every scale and the skips line up.
    """
    height, width = x.shape[-2:]
    return F.pad(x, [0, -width % multiple, 0, -height % multiple])


def crop_to(x: Tensor, grid_shape: tuple[int, int]) -> Tensor:
    """The leading ``grid_shape`` points of the last two dims (removes what ``pad_to_multiple`` added)."""
    return x[..., : grid_shape[0], : grid_shape[1]]


def unet_channels(width: int, n_scales: int) -> list[int]:
    """Channels of the encoder's feature map at each scale, finest first (bilinear U-Net)."""
    channels = [width * 2**scale for scale in range(n_scales - 1)]
    return [*channels, channels[-1] if channels else width]


def _normalization(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {kind!r}")


class DoubleConv(nn.Sequential):
    """``(3x3 conv -> norm -> ReLU) x 2``; the convolutions carry a bias only when there is no norm to absorb it."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int, normalization: str) -> None:
        bias = normalization == "none"
        super().__init__(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=bias),
            _normalization(normalization, mid_channels),
            nn.ReLU(),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=bias),
            _normalization(normalization, out_channels),
            nn.ReLU(),
        )


class UNetEncoder(nn.Module):
    """``width`` channels in, the feature map of each of ``n_scales`` scales out (finest first).

    The input's grid must divide by ``2 ** (n_scales - 1)`` (see ``pad_to_multiple``).
    """

    def __init__(self, width: int, n_scales: int, normalization: str) -> None:
        super().__init__()
        channels = unet_channels(width, n_scales)
        self.stages = nn.ModuleList([DoubleConv(width, width, width, normalization)])
        self.stages.extend(
            nn.Sequential(nn.MaxPool2d(2), DoubleConv(c_in, c_out, c_out, normalization))
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class _UpStage(nn.Module):
    """Upsample the coarser map 2x (bilinear, corners aligned), concatenate the skip, double conv."""

    def __init__(self, in_channels: int, out_channels: int, normalization: str) -> None:
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels, in_channels // 2, normalization)

    def forward(self, coarse: Tensor, skip: Tensor) -> Tensor:
        up = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        return self.conv(torch.cat([skip, up], dim=1))


class UNetDecoder(nn.Module):
    """The encoder's feature maps (finest first) in, ``width`` channels on the finest grid out.

    Each stage upsamples the map from below, concatenates the skip of its scale and halves the channels
    (``width * 2 ** (l - 1)`` out at scale ``l > 0``, ``width`` at the finest); a final 1x1 convolution follows.
    """

    def __init__(self, width: int, n_scales: int, normalization: str) -> None:
        super().__init__()
        channels = unet_channels(width, n_scales)
        # Stage at scale l takes the skip (channels[l]) plus the upsampled map (which has channels[l] as well).
        self.stages = nn.ModuleList(
            _UpStage(2 * channels[scale], channels[scale - 1] if scale > 0 else width, normalization)
            for scale in reversed(range(n_scales - 1))
        )
        self.output = nn.Conv2d(width, width, kernel_size=1)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = features[-1]
        for stage, skip in zip(self.stages, reversed(features[:-1]), strict=True):
            x = stage(x, skip)
        return self.output(x)


class LiftedUNet(nn.Module):
    """A U-Net between pointwise maps, on any grid: the frame of the U-Net baseline and of LSM.

    ``(batch, in_channels, h, w)``: append the grid coordinates, ``lift`` to ``width`` channels, zero-pad the grid
    to a multiple of ``grid_multiple``, encode, pass the feature map of each scale through its
    ``skip_blocks`` entry (none: unchanged), decode, crop, ``projection`` to the output channels.
    """

    def __init__(
        self,
        in_channels: int,
        lift: nn.Module,
        projection: nn.Module,
        *,
        width: int,
        n_scales: int,
        normalization: str,
        grid_multiple: int,
        skip_blocks: nn.ModuleList | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.grid_multiple = grid_multiple
        self.lift = lift
        self.encoder = UNetEncoder(width, n_scales, normalization)
        self.skip_blocks = skip_blocks
        self.decoder = UNetDecoder(width, n_scales, normalization)
        self.projection = projection

    def forward(self, x: Tensor) -> Tensor:
        check_grid_input(x, self.in_channels)
        grid_shape = tuple(x.shape[-2:])
        features = self.encoder(pad_to_multiple(self.lift(append_grid_coordinates(x, 2)), self.grid_multiple))
        if self.skip_blocks is not None:
            features = [block(f) for block, f in zip(self.skip_blocks, features, strict=True)]
        return self.projection(crop_to(self.decoder(features), grid_shape))
