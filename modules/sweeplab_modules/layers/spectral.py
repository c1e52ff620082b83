"""Spectral convolution and Fourier layer of the Fourier Neural Operator (Li et al. 2020, arXiv 2010.08895).

The convolution acts on the last ``len(modes)`` dimensions of a channel-first tensor
``(batch, channels, *grid)``. It keeps the lowest ``modes`` frequencies of a real FFT, multiplies them by
learned complex matrices (one per retained frequency, mixing channels) and transforms back to the input's
grid, so the same weights apply at any resolution that holds the retained frequencies.

Only ``2 * m`` of a dimension's ``n`` frequencies survive the truncation (``m`` along the last), so the
transforms are computed as truncated DFTs, i.e. matrix products with small precomputed Fourier matrices,
rather than as full FFTs that are mostly discarded. On CPU this is several times faster (padded grids such as
94 = 2 * 47 are the FFT's slow case); on GPU everything is dense GEMMs, which use TF32 tensor cores if the
program opts in with ``torch.set_float32_matmul_precision("high")`` (nothing here changes that setting).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sweeplab_modules.constraints import spectral_grid_problem
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

    Computation (same function as ``irfftn(R * rfftn(v))``, restructured for speed): a real matrix product
    with ``x`` takes the truncated real DFT along the last dimension, complex matrix products take the
    truncated DFT along each leading dimension, and one batched real matrix product over all retained
    frequencies mixes the channels, with each complex weight written as the real 2x2 block
    ``[[re, im], [-im, re]]``; the inverse transforms mirror the forward ones. No full-size spectrum or
    zero-filled buffer is formed.

    The transforms and the mixing run in float32 at least (float64 inputs stay float64) with autocast
    disabled, because low-precision Fourier transforms are inaccurate; the result is cast back to the input's
    dtype.

    ``forward(x, output_grid)`` transforms back onto another grid than the input's (the spatiotemporal FNO maps a
    window of snapshots onto a window of another length): the retained frequencies are resampled, scaled by
    the ratio of the grid sizes so that identity weights interpolate the band-limited function. ``bias_scale``
    adds a learned spectral bias (a complex number per retained frequency and output channel, shaped like
    ``weight`` without the input channels, zero at first), times ``bias_scale``: the SFNO's output layer
    (Cao et al. 2025, its ``delta``). Zero (the default) has no bias parameter.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: Sequence[int], bias_scale: float = 0.0) -> None:
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
        self.bias_scale = float(bias_scale)
        self.bias = nn.Parameter(torch.zeros(n_blocks, out_channels, *modes, 2)) if bias_scale else None

    @property
    def spatial_dims(self) -> int:
        return len(self.modes)

    def extra_repr(self) -> str:
        bias = f", bias_scale={self.bias_scale}" if self.bias is not None else ""
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, modes={self.modes}{bias}"

    def forward(self, x: Tensor, output_grid: Sequence[int] | None = None) -> Tensor:
        grid_shape = tuple(x.shape[-self.spatial_dims :])
        output_shape = grid_shape if output_grid is None else tuple(int(n) for n in output_grid)
        self._check_resolution(x, grid_shape)
        problem = spectral_grid_problem(self.modes, output_shape) if output_shape != grid_shape else None
        if problem is not None:
            raise ValueError(f"output {problem}")
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectrum = self._truncated_rfft(x.to(compute_dtype), grid_shape)
            mixed = self._mix_channels(spectrum)
            if self.bias is not None:
                mixed = mixed + self.bias_scale * self._spectral_bias(mixed.dtype)
            y = self._truncated_irfft(mixed, output_shape)
            if output_shape != grid_shape:
                # The inverse transform divides by the output's size, the forward one summed over the input's.
                y = y * (math.prod(output_shape) / math.prod(grid_shape))
        return y.to(x.dtype)

    def _spectral_bias(self, dtype: torch.dtype) -> Tensor:
        """``bias`` as complex ``(*retained, 1, out_channels)``, frequencies in spectrum order."""
        assert self.bias is not None
        d = self.spatial_dims
        bias = self.bias.to(dtype.to_real())
        bias = bias.view(*[2] * (d - 1), self.out_channels, *self.modes, 2)
        sign_dims, out_dim, leading_mode_dims = range(d - 1), d - 1, range(d, 2 * d - 1)
        order = [axis for pair in zip(sign_dims, leading_mode_dims, strict=True) for axis in pair]
        order += [2 * d - 1, out_dim, 2 * d]  # last mode dim, channels, (re, im)
        retained = [2 * m for m in self.modes[:-1]] + [self.modes[-1]]
        bias = bias.permute(order).reshape(*retained, 1, self.out_channels, 2)
        return torch.view_as_complex(bias.contiguous())

    def _truncated_rfft(self, x: Tensor, grid_shape: tuple[int, ...]) -> Tensor:
        """The retained frequencies of ``rfftn(x)``, complex, laid out ``(*retained, batch, in_channels)``.

        ``retained`` is ``2 * m`` per leading dimension (``k = 0 .. m-1`` then ``k = -m .. -1``) and ``m``
        along the last.
        """
        n_last, m_last = grid_shape[-1], self.modes[-1]
        spectrum = x.reshape(-1, n_last) @ _real_dft_matrix(n_last, m_last, x.dtype, x.device)
        spectrum = torch.view_as_complex(spectrum.view(*x.shape[:-1], m_last, 2))
        # Grid dims first, so that the transform along the first grid dim is one matrix product without a
        # copy, and the channel mixing below finds (frequency, batch, channel) contiguous.
        spectrum = spectrum.permute(*range(2, spectrum.dim()), 0, 1).contiguous()
        for dim, (n, m) in enumerate(zip(grid_shape[:-1], self.modes[:-1], strict=True)):
            matrix = _dft_matrix(n, m, spectrum.dtype, x.device, inverse=False)
            spectrum = torch.tensordot(matrix, spectrum, dims=([1], [dim])).movedim(0, dim)
        return spectrum

    def _mix_channels(self, spectrum: Tensor) -> Tensor:
        """``out[k] = in[k] @ R[k]`` at every retained frequency ``k``: one batched real matrix product."""
        retained = spectrum.shape[:-2]
        batch = spectrum.shape[-2]
        # (frequencies, batch, in * 2) with each channel's (re, im) adjacent, against (frequencies, in * 2,
        # out * 2) real blocks [[re, im], [-im, re]]: the complex product on plain real BLAS / tensor cores.
        real_input = torch.view_as_real(spectrum).reshape(-1, batch, 2 * self.in_channels)
        real_output = torch.bmm(real_input, self._real_mixing_matrices(real_input.dtype))
        return torch.view_as_complex(real_output.view(*retained, batch, self.out_channels, 2))

    def _real_mixing_matrices(self, dtype: torch.dtype) -> Tensor:
        """``weight`` as real ``(frequencies, 2 * in, 2 * out)`` matrices, frequencies in spectrum order."""
        d = self.spatial_dims
        # Split the block index into one sign bit per leading dim and interleave each with its mode index,
        # so that (sign_j, k_j) flattens to the spectrum's 2 * m_j frequencies of that dim.
        channels = (self.in_channels, self.out_channels)
        weight = self.weight.to(dtype).view(*[2] * (d - 1), *channels, *self.modes, 2)
        sign_dims, in_dim, out_dim, leading_mode_dims = range(d - 1), d - 1, d, range(d + 1, 2 * d)
        order = [axis for pair in zip(sign_dims, leading_mode_dims, strict=True) for axis in pair]
        order += [2 * d, in_dim, out_dim, 2 * d + 1]  # last mode dim, channels, (re, im)
        real, imag = weight.permute(order).reshape(-1, self.in_channels, self.out_channels, 2).unbind(-1)
        blocks = torch.stack(
            [torch.stack([real, imag], dim=-1), torch.stack([-imag, real], dim=-1)], dim=2
        )  # (frequencies, in, 2, out, 2)
        return blocks.reshape(-1, 2 * self.in_channels, 2 * self.out_channels)

    def _truncated_irfft(self, spectrum: Tensor, grid_shape: tuple[int, ...]) -> Tensor:
        """``irfftn`` onto ``grid_shape`` of a spectrum laid out as ``_truncated_rfft``'s (others zero)."""
        d = self.spatial_dims
        batch, channels = spectrum.shape[-2:]
        for dim, (n, m) in enumerate(zip(grid_shape[:-1], self.modes[:-1], strict=True)):
            matrix = _dft_matrix(n, m, spectrum.dtype, spectrum.device, inverse=True)
            spectrum = torch.tensordot(matrix, spectrum, dims=([1], [dim])).movedim(0, dim)
        n_last, m_last = grid_shape[-1], self.modes[-1]
        # (batch, channels, *grid dims but the last) rows, the last dim's (frequency, re/im) columns.
        spectrum = torch.view_as_real(spectrum.permute(d, d + 1, *range(d))).reshape(-1, 2 * m_last)
        y = spectrum @ _real_inverse_dft_matrix(n_last, m_last, spectrum.dtype, spectrum.device)
        return y.view(batch, channels, *grid_shape)

    def _check_resolution(self, x: Tensor, grid_shape: tuple[int, ...]) -> None:
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input (batch, {self.in_channels}, {self.spatial_dims} grid dims), got {tuple(x.shape)}"
            )
        problem = spectral_grid_problem(self.modes, grid_shape)
        if problem is not None:
            raise ValueError(problem)


# Fourier matrices, cached per size, dtype and device (the FNO's layers share them). They are built with
# inference mode off so that matrices first built during validation can still be saved for backward.


def _phases(frequencies: Tensor, n: int) -> Tensor:
    """``2 pi k x / n`` for frequencies ``k`` (rows) and points ``x = 0 .. n-1`` (columns), in float64.

    ``k x`` is reduced modulo ``n`` in integers first, so the angle stays in ``[0, 2 pi)`` and exact.
    """
    points = torch.arange(n, device=frequencies.device)
    return (frequencies[:, None] * points % n).double() * (2 * math.pi / n)


@functools.lru_cache(maxsize=64)
def _real_dft_matrix(n: int, m: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(n, 2 m)`` real: ``x @ it`` is ``rfft(x)[..., :m]`` with each frequency's (re, im) adjacent."""
    with torch.inference_mode(False):
        phase = _phases(torch.arange(m, device=device), n).T
        return torch.stack([phase.cos(), -phase.sin()], dim=-1).reshape(n, 2 * m).to(dtype)


@functools.lru_cache(maxsize=64)
def _real_inverse_dft_matrix(n: int, m: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(2 m, n)`` real: ``irfft(spectrum, n)`` of the first ``m`` bins (re, im adjacent), the rest zero.

    A bin ``0 < k < n / 2`` stands for ``k`` and its conjugate ``-k``, so it counts twice; like ``irfft``,
    the imaginary part of the self-conjugate bins ``0`` and ``n / 2`` is ignored.
    """
    with torch.inference_mode(False):
        frequencies = torch.arange(m, device=device)
        phase = _phases(frequencies, n)
        self_conjugate = ((frequencies == 0) | (2 * frequencies == n))[:, None]
        real_part = torch.where(self_conjugate, 1.0, 2.0) * phase.cos() / n
        imag_part = torch.where(self_conjugate, 0.0, -2.0) * phase.sin() / n
        return torch.stack([real_part, imag_part], dim=1).reshape(2 * m, n).to(dtype)


@functools.lru_cache(maxsize=64)
def _dft_matrix(n: int, m: int, dtype: torch.dtype, device: torch.device, *, inverse: bool) -> Tensor:
    """Complex DFT restricted to the frequencies ``0 .. m-1, -m .. -1``: ``(2 m, n)``, or ``(n, 2 m)`` for
    the inverse (with its ``1 / n``), which sums over those frequencies only."""
    with torch.inference_mode(False):
        frequencies = torch.cat([torch.arange(m, device=device), torch.arange(n - m, n, device=device)])
        phase = _phases(frequencies, n)
        if inverse:
            return (torch.polar(torch.full_like(phase, 1 / n), phase).T).to(dtype)
        return torch.polar(torch.ones_like(phase), -phase).to(dtype)


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
