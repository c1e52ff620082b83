"""Reusable layers for neural operators on regular grids, channel-first ``(batch, channels, *grid)``."""

from sweeplab_modules.layers.grid import append_grid_coordinates, crop_domain, grid_coordinates, pad_domain
from sweeplab_modules.layers.pointwise import ACTIVATIONS, PointwiseLinear, PointwiseMLP, make_activation
from sweeplab_modules.layers.polycom import PolyNorm, PolyReLU
from sweeplab_modules.layers.spectral import FourierLayer, SpectralConv

__all__ = [
    "ACTIVATIONS",
    "FourierLayer",
    "PointwiseLinear",
    "PointwiseMLP",
    "PolyNorm",
    "PolyReLU",
    "SpectralConv",
    "append_grid_coordinates",
    "crop_domain",
    "grid_coordinates",
    "make_activation",
    "pad_domain",
]
