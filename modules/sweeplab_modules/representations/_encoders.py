"""Encoder backbones: a small CNN and a ResNet for images, an MLP for vectors, all ending in a flat feature vector."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["ConvEncoder", "MLPEncoder", "ResNetEncoder"]


class _ImageEncoder(nn.Module):
    """An image encoder: ``layers`` map (batch, channels, height, width) to (batch, ``feature_dim``)."""

    layers: nn.Sequential
    feature_dim: int

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images (batch, channels, height, width), got {tuple(x.shape)}")
        return self.layers(x)


class ConvEncoder(_ImageEncoder):
    """``n_blocks`` blocks of (3x3 conv, batch norm, ReLU, 2x2 max pool) doubling the channels from ``width``,
    then global average pooling: features of dimension ``width * 2^(n_blocks - 1)`` for any image size."""

    def __init__(self, in_channels: int, width: int, n_blocks: int) -> None:
        super().__init__()
        if width < 1 or n_blocks < 1:
            raise ValueError(f"width and n_blocks must be >= 1, got {width} and {n_blocks}")
        layers: list[nn.Module] = []
        channels = in_channels
        for block in range(n_blocks):
            out = width * 2**block
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),  # ceil: 8x8 digits survive three blocks
            ]
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.layers = nn.Sequential(*layers)
        self.feature_dim = channels


class MLPEncoder(nn.Module):
    """``depth`` layers of (linear, batch norm, ReLU) of width ``width``: features of dimension ``width``."""

    def __init__(self, in_features: int, width: int, depth: int) -> None:
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be >= 1, got {width} and {depth}")
        layers: list[nn.Module] = []
        for layer in range(depth):
            layers += [nn.Linear(in_features if layer == 0 else width, width), nn.BatchNorm1d(width), nn.ReLU()]
        self.layers = nn.Sequential(*layers)
        self.feature_dim = width

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2:
            raise ValueError(f"expected vectors (batch, features), got {tuple(x.shape)}")
        return self.layers(x)


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.relu(self.branch(x) + self.skip(x))


class ResNetEncoder(_ImageEncoder):
    """He et al.'s CIFAR ResNet: 3x3 stem, one stage per width of ``blocks_per_stage`` basic blocks (stride 2 from
    the second stage on; 1x1 projection skips), global average pooling: features of dimension ``widths[-1]``.
    The Euclidean twin of the Poincaré ResNet encoder, layer for layer."""

    def __init__(self, in_channels: int, widths: Sequence[int], blocks_per_stage: int) -> None:
        super().__init__()
        if blocks_per_stage < 1 or not widths or min(widths) < 1:
            raise ValueError(f"need blocks_per_stage >= 1 and positive widths, got {blocks_per_stage}, {list(widths)}")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        ]
        channels = widths[0]
        for stage, width in enumerate(widths):
            for block in range(blocks_per_stage):
                layers.append(_BasicBlock(channels, width, 2 if stage > 0 and block == 0 else 1))
                channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.layers = nn.Sequential(*layers)
        self.feature_dim = channels
