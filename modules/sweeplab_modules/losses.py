"""Loss and metric functions: pure functions of tensors, no module state.

Tensors are laid out ``(batch, channels, *grid)``; every function reduces to the mean over the batch of a
per-sample relative error, computed in float32 at least so it is safe under autocast. The exception is
``vorticity_residual``, a physics loss: a norm of how far a predicted trajectory is from solving its equation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["mean_squared_error", "relative_h1", "relative_l2", "spectral_upsample", "vorticity_residual"]


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


def spectral_upsample(field: Tensor, size: int) -> Tensor:
    """``field`` (``(..., n, n)``, periodic, points ``i / n``) on ``size x size`` points by Fourier interpolation.

    The modes ``|k| < n / 2`` are kept; an even ``n``'s Nyquist modes, whose sign the grid cannot tell, are dropped.
    """
    n = field.shape[-1]
    if field.shape[-2] != n or size < n:
        raise ValueError(f"expected square grids of at most {size} points, got {tuple(field.shape[-2:])}")
    spectrum = torch.fft.rfft2(field, norm="forward")
    kept = (n + 1) // 2  # k = 0 .. kept-1 and -(kept-1) .. -1
    fine = spectrum.new_zeros(*field.shape[:-2], size, size // 2 + 1)
    fine[..., :kept, :kept] = spectrum[..., :kept, :kept]
    fine[..., size - kept + 1 :, :kept] = spectrum[..., n - kept + 1 :, :kept]
    return torch.fft.irfft2(fine, s=(size, size), norm="forward")


def vorticity_residual(
    vorticity: Tensor,
    *,
    nu: float,
    forcing_amplitude: float,
    time_step: float,
    refinement: int = 2,
    alpha: float = 0.1,
    order: float = -1.0,
) -> Tensor:
    """Mean over the batch of ``||R||_{L2(0, T; H^order)}``, ``R = w_t + u . grad w - nu Laplace w - f``: the
    Spectral-Refiner's loss (Cao et al. 2025) for 2D Navier-Stokes in vorticity form on the unit torus.

    ``vorticity``: ``(batch, snapshots, n, n)`` in physical units, snapshots ``time_step`` apart, points
    ``x_i = i / n`` (axis -2 is x, axis -1 is y, as the ``navier_stokes`` generator stores them); its forcing
    ``f = forcing_amplitude (sin 2 pi (x + y) + cos 2 pi (x + y))``, velocity ``u = (psi_y, -psi_x)`` with
    ``-Laplace psi = w``. The snapshots are interpolated spectrally onto ``refinement * n`` points, where the
    space derivatives are spectral and the advection is formed in physical space (on twice the grid, the product
    of two fields resolved on the coarse one is not aliased). ``w_t`` is the trajectory's own time derivative,
    second-order finite differences (central inside, one-sided at the ends), so the snapshots must be close
    enough in time to resolve it; the paper's code instead takes ``w_t`` from one step of its solver.

    The norm (the paper's negative Sobolev norm, ``alpha = 0.1``, ``order = -1``): ``||r||_{H^s}^2 =
    sum_k (alpha + 4 pi^2 |k|^2)^s |r_k|^2`` over the Fourier coefficients ``r_k`` of ``r`` (its L2 norm for
    ``s = 0``, Parseval), then the L2 norm over time (the trapezoid-free sum times ``time_step``). Computed in
    float64 at least: the residual of an accurate trajectory is a small difference of large terms.
    """
    if vorticity.ndim != 4 or vorticity.shape[-1] != vorticity.shape[-2] or vorticity.shape[1] < 2:
        raise ValueError(f"expected (batch, snapshots >= 2, n, n) vorticity snapshots, got {tuple(vorticity.shape)}")
    if refinement < 1 or time_step <= 0 or alpha <= 0:
        raise ValueError(f"refinement >= 1, time_step > 0 and alpha > 0 needed, got {refinement}, {time_step}, {alpha}")
    w = vorticity.to(torch.promote_types(vorticity.dtype, torch.float64))
    size = refinement * w.shape[-1]
    edge_order = 2 if w.shape[1] >= 3 else 1
    (w_t,) = torch.gradient(w, spacing=time_step, dim=1, edge_order=edge_order)
    w, w_t = spectral_upsample(w, size), spectral_upsample(w_t, size)

    k = torch.fft.fftfreq(size, 1.0 / size, dtype=w.dtype, device=w.device)
    k_x, k_y = k[:, None], k[: size // 2 + 1][None, :].abs()
    minus_laplacian = 4 * math.pi**2 * (k_x**2 + k_y**2)
    w_hat = torch.fft.rfft2(w)
    psi_hat = w_hat / torch.where(minus_laplacian > 0, minus_laplacian, 1.0)
    grid = (size, size)
    u = torch.fft.irfft2(2j * math.pi * k_y * psi_hat, s=grid)
    v = torch.fft.irfft2(-2j * math.pi * k_x * psi_hat, s=grid)
    w_x = torch.fft.irfft2(2j * math.pi * k_x * w_hat, s=grid)
    w_y = torch.fft.irfft2(2j * math.pi * k_y * w_hat, s=grid)
    laplacian_w = torch.fft.irfft2(-minus_laplacian * w_hat, s=grid)
    points = torch.arange(size, dtype=w.dtype, device=w.device) / size
    phase = 2 * math.pi * (points[:, None] + points[None, :])
    forcing = forcing_amplitude * (torch.sin(phase) + torch.cos(phase))
    residual = w_t + u * w_x + v * w_y - nu * laplacian_w - forcing

    coefficients = torch.fft.fft2(residual, norm="forward")
    full_k_y = k[None, :]
    weight = (alpha + 4 * math.pi**2 * (k_x**2 + full_k_y**2)) ** order
    squared_in_space = (weight * coefficients.abs() ** 2).sum(dim=(-2, -1))  # (batch, snapshots)
    return (squared_in_space.sum(dim=1) * time_step).sqrt().mean()
