"""Spectral convolution and Fourier layer of the Fourier Neural Operator (Li et al. 2020, arXiv 2010.08895).

The convolution acts on the last ``len(modes)`` dimensions of a channel-first tensor
``(batch, channels, *grid)``. It keeps the lowest ``modes`` frequencies of a real FFT, multiplies them by
learned complex matrices (one per retained frequency, mixing channels) and transforms back to the input's
grid, so the same weights apply at any resolution that holds the retained frequencies.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sweeplab_modules.layers.pointwise import PointwiseLinear

__all__ = ["FourierLayer", "SpectralConv"]


class SpectralConv(nn.Module):
    """Truncated Fourier-space convolution ``K v = irfft(R * rfft(v)[low modes])`` in ``len(modes)`` dims.

    The real FFT halves only the last dimension, so the cut ``|k_j| < modes[j]`` on every leading dimension
    keeps two blocks per leading dimension (non-negative and negative ``k_j``); the last dimension keeps
    ``0 <= k < modes[-1]``. There are therefore ``2 ** (d - 1)`` blocks of weights: 1 in 1D, 2 in 2D (the
    ``weights1``/``weights2`` of the paper's code), 4 in 3D.

    Storage: ``weight`` is a real parameter of shape ``(2 ** (d - 1), in_channels, out_channels, *modes, 2)``
    holding the real and imaginary parts (read it as complex with ``torch.view_as_complex``). Real storage
    keeps optimisers, gradient clipping, weight decay, distributed reductions and checkpoints on their
    well-trodden real paths; its ``numel`` counts each complex weight twice. Block ``b`` enumerates the sign
    of each leading dimension's frequency, non-negative first, in ``itertools.product`` order (in 2D: block 0
    holds ``k1 = 0 .. m1-1``, block 1 holds ``k1 = -m1 .. -1``).

    Initialisation follows the reference code: real and imaginary parts uniform in ``[0, 1 / (in * out))``.

    The FFTs run in float32 at least (float64 inputs stay float64) with autocast disabled, because
    half-precision FFTs are unsupported on CPU, restricted to power-of-two sizes on CUDA, and inaccurate; the
    result is cast back to the input's dtype.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: Sequence[int]) -> None:
        super().__init__()
        modes = tuple(int(m) for m in modes)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        if not modes or any(m < 1 for m in modes):
            raise ValueError(f"modes must hold one positive integer per spatial dimension, got {modes}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes
        n_blocks = 2 ** (len(modes) - 1)
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(n_blocks, in_channels, out_channels, *modes, 2))

    @property
    def spatial_dims(self) -> int:
        return len(self.modes)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, modes={self.modes}"

    def forward(self, x: Tensor) -> Tensor:
        grid_shape = tuple(x.shape[-self.spatial_dims :])
        self._check_resolution(x, grid_shape)
        fft_dims = tuple(range(-self.spatial_dims, 0))
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x_hat = torch.fft.rfftn(x.to(compute_dtype), dim=fft_dims)
            weight = torch.view_as_complex(self.weight.to(compute_dtype))
            out_hat = x_hat.new_zeros(x.shape[0], self.out_channels, *x_hat.shape[2:])
            for block, corner in enumerate(self._retained_corners(grid_shape)):
                index = (slice(None), slice(None), *corner)
                # One (in -> out) complex matrix per retained frequency.
                out_hat[index] = torch.einsum("bi...,io...->bo...", x_hat[index], weight[block])
            y = torch.fft.irfftn(out_hat, s=grid_shape, dim=fft_dims)
        return y.to(x.dtype)

    def _retained_corners(self, grid_shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
        """Index slices of the retained blocks in the rfft spectrum, in the order of ``weight``'s blocks."""
        leading = [
            (slice(0, m), slice(n - m, n)) for m, n in zip(self.modes[:-1], grid_shape[:-1], strict=True)
        ]
        last = (slice(0, self.modes[-1]),)
        return list(itertools.product(*leading, last))

    def _check_resolution(self, x: Tensor, grid_shape: tuple[int, ...]) -> None:
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input (batch, {self.in_channels}, {self.spatial_dims} grid dims), "
                f"got {tuple(x.shape)}"
            )
        # Leading dims keep 2 * m frequencies that must not overlap; the last keeps m of its n // 2 + 1.
        too_small = [n < 2 * m for m, n in zip(self.modes[:-1], grid_shape[:-1], strict=True)]
        too_small.append(grid_shape[-1] // 2 + 1 < self.modes[-1])
        if any(too_small):
            raise ValueError(
                f"grid {grid_shape} is too coarse for modes {self.modes}: need n >= 2 * modes "
                "along the leading dims and n >= 2 * (modes - 1) along the last"
            )


class FourierLayer(nn.Module):
    """One Fourier layer ``v <- act(K v + W v)``: spectral convolution ``K`` plus pointwise linear ``W``.

    ``activation=None`` gives the plain sum, as the FNO uses after its last Fourier layer.
    """

    def __init__(self, channels: int, modes: Sequence[int], activation: nn.Module | None) -> None:
        super().__init__()
        self.spectral = SpectralConv(channels, channels, modes)
        self.pointwise = PointwiseLinear(channels, channels)
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.spectral(x) + self.pointwise(x))
