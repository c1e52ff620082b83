"""Loss and metric functions: pure functions of tensors, no module state.

Tensors are laid out ``(batch, channels, *grid)``; every function reduces to the mean over the batch of a
per-sample relative error, computed in float32 at least so it is safe under autocast.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["mean_squared_error", "relative_h1", "relative_l2"]


def _checked_pair(prediction: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    dtype = torch.promote_types(torch.promote_types(prediction.dtype, target.dtype), torch.float32)
    return prediction.to(dtype), target.to(dtype)


def mean_squared_error(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean of ``(prediction - target)^2`` over every element (not relative: depends on the data's scale)."""
    prediction, target = _checked_pair(prediction, target)
    return torch.mean((prediction - target) ** 2)


def relative_l2(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of ``||prediction - target||_2 / ||target||_2``, norms over all non-batch dims.

    The FNO paper's loss and test metric (its ``LpLoss`` with p = 2, relative, size-averaged). Invariant to a
    common rescaling of prediction and target. A sample whose target is identically zero gives inf or nan, as
    the metric is undefined there.
    """
    prediction, target = _checked_pair(prediction, target)
    error_norm = torch.linalg.vector_norm((prediction - target).flatten(start_dim=1), dim=1)
    target_norm = torch.linalg.vector_norm(target.flatten(start_dim=1), dim=1)
    return (error_norm / target_norm).mean()


def _squared_h1_norms(field: Tensor) -> Tensor:
    """Per sample, ``sum(v^2) + sum_j sum((d v / d x_j)^2)`` over channels and grid points (finite differences)."""
    grid_dims = list(range(2, field.ndim))
    spacings = [1.0 / (field.shape[dim] - 1) for dim in grid_dims]
    edge_order = 2 if min(field.shape[dim] for dim in grid_dims) >= 3 else 1
    derivatives = torch.gradient(field, spacing=spacings, dim=grid_dims, edge_order=edge_order)
    squared = field.square().flatten(start_dim=1).sum(dim=1)
    for derivative in derivatives:
        squared = squared + derivative.square().flatten(start_dim=1).sum(dim=1)
    return squared


def relative_h1(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of ``||prediction - target||_H1 / ||target||_H1`` on the unit domain.

    ``||v||_H1^2 = ||v||_L2^2 + sum_j ||d v / d x_j||_L2^2`` over every channel, with the grid taken as the nodes
    of [0, 1] along each of the ``ndim - 2`` grid dims (spacing ``1 / (n - 1)``) and the derivatives by
    second-order finite differences (``torch.gradient``: central inside, one-sided at the ends; first order on
    grids of 2 points). The grid sums stand for the integrals; their common weight cancels in the ratio.

    Finite differences, not the Fourier form of the FNO code's ``HsLoss`` (weights ``sqrt(1 + |k|^2)`` on the
    FFT), because they need no periodicity: on a non-periodic field (Darcy) the FFT sees the jump at the
    boundary and the Fourier H1 norm grows with the resolution, while this one converges to the continuous norm
    (to second order for smooth fields, on periodic grids too), so errors at different test resolutions
    compare. A target that is identically zero gives inf or nan.
    """
    prediction, target = _checked_pair(prediction, target)
    if prediction.ndim < 3 or min(prediction.shape[2:]) < 2:
        raise ValueError(
            f"expected (batch, channels, *grid) with at least one grid dim of 2 points or more, "
            f"got {tuple(prediction.shape)}"
        )
    return (_squared_h1_norms(prediction - target) / _squared_h1_norms(target)).sqrt().mean()
