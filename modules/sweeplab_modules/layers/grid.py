"""Coordinate features and domain padding for fields on regular grids ``(batch, channels, *grid)``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["append_grid_coordinates", "crop_domain", "grid_coordinates", "pad_domain"]


def grid_coordinates(
    grid_shape: tuple[int, ...],
    batch_size: int,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Normalised coordinates in ``[0, 1]``, ends included: shape ``(batch, len(grid_shape), *grid_shape)``.

    Channel ``j`` holds the coordinate along grid dimension ``j``, the ``get_grid`` features of the FNO code.
    """
    axes = [torch.linspace(0.0, 1.0, n, device=device, dtype=dtype) for n in grid_shape]
    coordinates = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return coordinates.expand(batch_size, *coordinates.shape)


def append_grid_coordinates(x: Tensor, spatial_dims: int) -> Tensor:
    """Append the coordinates of ``x``'s last ``spatial_dims`` dims to its channels (on x's device, dtype)."""
    grid_shape = tuple(x.shape[-spatial_dims:])
    coordinates = grid_coordinates(grid_shape, x.shape[0], device=x.device, dtype=x.dtype)
    return torch.cat([x, coordinates], dim=1)


def pad_domain(x: Tensor, padding: Sequence[int], spatial_dims: int) -> Tensor:
    """Zero-pad the high end of each of the last ``spatial_dims`` dims by ``padding[i]`` points.

    The FFT treats the domain as periodic; the padding gives a non-periodic solution room to wrap around
    (Darcy flow, for instance). Undo with ``crop_domain``.
    """
    if not any(padding):
        return x
    return F.pad(x, [side for points in reversed(padding[:spatial_dims]) for side in (0, points)])


def crop_domain(x: Tensor, padding: Sequence[int], spatial_dims: int) -> Tensor:
    """Remove what ``pad_domain`` added."""
    if not any(padding):
        return x
    sizes = x.shape[x.dim() - spatial_dims :]
    return x[(..., *[slice(0, n - points) for n, points in zip(sizes, padding, strict=True)])]
