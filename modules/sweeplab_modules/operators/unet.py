"""U-Net baseline for operator learning on 2D grids (Ronneberger, Fischer, Brox 2015), in the form the
neural-operator papers compare against (LSM, Wu et al. 2023; thuml/Neural-Solver-Library's ``U_Net``).

Append the normalised grid coordinates to the input channels, lift pointwise
``in + 2 -> 2 width -> GELU -> width``, zero-pad the high end of the grid to a multiple of
``2 ** (n_scales - 1)``, run the U-Net (double ``3x3 conv -> norm -> ReLU`` stages, max-pooling, bilinear
upsampling, skip connections; ``width * 2 ** l`` channels at scale ``l``), crop, and project pointwise
``width -> projection_width -> GELU -> out``.

Published setting (LSM paper's Darcy and Navier-Stokes baselines): width 64, 5 scales, batch norm for steady
problems (Darcy) and instance norm for time-dependent ones (Navier-Stokes); Adam lr 5e-4 (1e-3 in the
library), batch 20, 500 epochs, StepLR(100, 0.5), relative L2 loss. The LSM paper reports relative L2 0.0080
on Darcy 85^2 and 0.1982 on Navier-Stokes nu = 1e-5.

Convolution stencils are tied to the grid spacing, so the network is not resolution invariant: it runs at any
size but is meant to be evaluated at the resolution it was trained on.
"""

from __future__ import annotations

from typing import Literal

from sweeplab_modules.layers import PointwiseMLP
from sweeplab_modules.layers.unet import NORMALIZATIONS, LiftedUNet
from sweeplab_modules.layers.validation import checked_choice, checked_size

__all__ = ["UNet2d"]


class UNet2d(LiftedUNet):
    """``(batch, in_channels, h, w) -> (batch, out_channels, h, w)`` at any ``h, w`` (padded inside)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        n_scales: int = 5,
        normalization: Literal["batch", "instance", "none"] = "batch",
        projection_width: int = 64,
    ) -> None:
        in_channels = checked_size("in_channels", in_channels, minimum=1)
        out_channels = checked_size("out_channels", out_channels, minimum=1)
        width = checked_size("width", width, minimum=1)
        n_scales = checked_size("n_scales", n_scales, minimum=1)
        projection_width = checked_size("projection_width", projection_width, minimum=1)
        super().__init__(
            in_channels,
            lift=PointwiseMLP(in_channels + 2, 2 * width, width),
            projection=PointwiseMLP(width, projection_width, out_channels),
            width=width,
            n_scales=n_scales,
            normalization=checked_choice("normalization", normalization, NORMALIZATIONS),
            grid_multiple=2 ** (n_scales - 1),
        )
