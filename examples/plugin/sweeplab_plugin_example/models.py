"""A residual 1D CNN operator: the convolutional baseline of operator-learning comparisons."""

from __future__ import annotations

from torch import Tensor, nn


class ConvOperator1d(nn.Module):
    """Lift to ``width`` channels, ``n_blocks`` residual blocks of two same-padded convolutions, project back.

    Input and output are ``(batch, channels, points)`` on one periodic grid (circular padding)."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 32, n_blocks: int = 4, kernel_size: int = 5):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep the grid, got {kernel_size}")

        def conv(channels_in: int, channels_out: int) -> nn.Conv1d:
            return nn.Conv1d(channels_in, channels_out, kernel_size, padding=kernel_size // 2, padding_mode="circular")

        self.lift = nn.Conv1d(in_channels, width, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(conv(width, width), nn.GELU(), conv(width, width)) for _ in range(n_blocks)
        )
        self.project = nn.Sequential(nn.Conv1d(width, width, 1), nn.GELU(), nn.Conv1d(width, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        v = self.lift(x)
        for block in self.blocks:
            v = v + block(v)
        return self.project(v)
