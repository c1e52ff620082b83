"""Coordinates of grid points and the sampling of grid fields at a fixed set of sensors (DeepONet-style branches).

Two conventions for where a grid of ``n`` points lies on the unit interval, per dimension:

- closed (``periodic=False``): ``x_j = j / (n - 1)``, both ends included, as ``grid_coordinates`` (the FNO's grid
  features) and the Darcy data (nodes on the boundary);
- periodic (``periodic=True``): ``x_j = j / n``, the point 1 being the point 0 again, as the Burgers data.

With the right convention, a field subsampled from a finer grid keeps the coordinates of its points, so models
that read coordinates agree across resolutions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["grid_points", "sample_on_sensors"]

_INTERPOLATION_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def grid_points(
    grid_shape: Sequence[int],
    *,
    periodic: bool,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """The coordinates of every point of a grid, ``(prod(grid_shape), len(grid_shape))``, in row-major order.

    Row ``i`` is the point at flat index ``i`` of a ``(*grid_shape)`` field (``field.reshape(-1)[i]``).
    """
    axes = [
        torch.arange(n, device=device, dtype=dtype) / n
        if periodic
        else torch.linspace(0.0, 1.0, n, device=device, dtype=dtype)
        for n in grid_shape
    ]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid_shape))


def sample_on_sensors(x: Tensor, sensors: Sequence[int], *, periodic: bool) -> Tensor:
    """Values of the fields ``x`` ``(batch, channels, *grid)`` at the sensor grid ``(batch, channels, *sensors)``.

    Piecewise-linear interpolation (per dimension) in the grid's convention (see the module docstring): a
    sensor that falls on a grid point takes that point's value exactly, so a grid that contains the sensors
    (the sensor grid itself, or a refinement of it by an integer factor) is sampled without any smoothing,
    which is what the branch net of a DeepONet reads: point values of the input function. Periodic grids
    interpolate across the wrap-around between the last point and the first.
    """
    spatial_dims = len(sensors)
    if x.dim() != spatial_dims + 2:
        raise ValueError(f"expected fields (batch, channels, {spatial_dims} grid dims), got {tuple(x.shape)}")
    if any(n < 2 for n in x.shape[2:]):
        raise ValueError(f"need at least 2 points per grid dimension to interpolate, got grid {tuple(x.shape[2:])}")
    mode = _INTERPOLATION_MODES[spatial_dims]
    if not periodic:
        return F.interpolate(x, size=tuple(sensors), mode=mode, align_corners=True)
    # Append the first point after the last: the grid then spans [0, 1] with ends included, on which the
    # periodic sensors j / m are the closed grid of m + 1 points without its last one.
    wrapped = F.pad(x, [0, 1] * spatial_dims, mode="circular")
    sampled = F.interpolate(wrapped, size=tuple(m + 1 for m in sensors), mode=mode, align_corners=True)
    return sampled[(..., *[slice(0, -1)] * spatial_dims)]
