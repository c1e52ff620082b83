"""The network of the Deep Conjugate Direction Method (Kaneda, Akar, Chen, Kim, Teran; ICML 2023), on 2D grids.

A convolutional network f that approximates the action of A^-1 on a residual, up to a scalar (the conjugate
direction iteration rescales every direction by its optimal step). The authors' network (3D, TensorFlow): a
linear 3x3x3 convolution to 16 channels; residual blocks of two ReLU convolutions at full resolution; 2x average
pooling; three residual blocks at half resolution; 2x upsampling added to the full-resolution features (a skip
connection); two residual blocks; a linear per-voxel dense layer to one output. Here the same in 2D with 3x3
convolutions; the block counts are parameters with the paper's values as defaults (two blocks before pooling is our
reading of the authors' N = 64 script).

Grids of odd size (our nodal grids: 33, 65, ...) are padded by one zero row/column before pooling and cropped
after upsampling, so the network is fully convolutional at any grid size: the same weights serve every resolution.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from sweeplab_modules.layers.validation import checked_size

__all__ = ["DeepConjugateDirectionNetwork"]


class _ResidualBlock(nn.Module):
    """x + relu(conv(relu(conv(x)))), 3x3 convolutions keeping the channels."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.first = nn.Conv2d(width, width, 3, padding=1)
        self.second = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + F.relu(self.second(F.relu(self.first(x))))


class DeepConjugateDirectionNetwork(nn.Module):
    """(batch, in_channels, H, W) -> (batch, out_channels, H, W): residual (and conditioning fields such as the
    coefficient) to a search direction. ``width`` channels throughout; ``fine_blocks`` residual blocks before
    pooling, ``coarse_blocks`` at half resolution, ``final_blocks`` after the skip connection."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 16,
        fine_blocks: int = 2,
        coarse_blocks: int = 3,
        final_blocks: int = 2,
    ) -> None:
        in_channels = checked_size("in_channels", in_channels, minimum=1)
        out_channels = checked_size("out_channels", out_channels, minimum=1)
        width = checked_size("width", width, minimum=1)
        fine_blocks = checked_size("fine_blocks", fine_blocks, minimum=0)
        coarse_blocks = checked_size("coarse_blocks", coarse_blocks, minimum=0)
        final_blocks = checked_size("final_blocks", final_blocks, minimum=0)
        super().__init__()
        self.lift = nn.Conv2d(in_channels, width, 3, padding=1)  # linear, as in the paper
        self.fine = nn.Sequential(*(_ResidualBlock(width) for _ in range(fine_blocks)))
        self.coarse = nn.Sequential(*(_ResidualBlock(width) for _ in range(coarse_blocks)))
        self.final = nn.Sequential(*(_ResidualBlock(width) for _ in range(final_blocks)))
        self.project = nn.Conv2d(width, out_channels, 1)  # the per-node dense layer, linear

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        fine = self.fine(self.lift(x))
        padded = F.pad(fine, (0, width % 2, 0, height % 2))
        coarse = self.coarse(F.avg_pool2d(padded, 2))
        upsampled = F.interpolate(coarse, scale_factor=2, mode="nearest")
        merged = upsampled[..., :height, :width] + fine
        return self.project(self.final(merged))
