"""Spatiotemporal Fourier Neural Operator (SFNO; Cao, Brarda, Li, Xi, "Spectral-Refiner: Accurate Fine-Tuning of
Spatiotemporal Fourier Neural Operator for Turbulent Flows", ICLR 2025, arXiv 2405.17211).

A trajectory-to-trajectory operator: a window of ``in_channels`` vorticity snapshots on an ``(x, y)`` grid maps to
the next ``out_channels`` snapshots, with space and time convolved together by 3D Fourier transforms over
``(x, y, t)``. The architecture follows the paper's code (scaomath/torch-cfd, ``sfno/``), written here with this
package's spectral convolution:

- lifting: the vorticity is added to a positional encoding (the coordinates ``x``, ``y``, ``t`` and ``width``
  time channels ``exp(beta t) sin(pi k t)`` / ``cos``, ``beta`` from the a-priori decay of the Navier-Stokes
  energy), normalised (GroupNorm with one group, the code's ``LayerNorm3d``), mapped pointwise to ``width``
  channels and by a spatiotemporal spectral convolution from the input window onto ``latent_steps`` snapshots
  (Fourier resampling in time: the hidden layers' time length does not depend on the input's);
- ``n_layers - 1`` layers ``v <- act(MLP(K v) + W v)`` (``MLP``: ``width -> channel_expansion -> width``,
  pointwise), the lifting's convolution being the first of the ``n_layers`` spectral layers;
- output: a pointwise reduction to one channel; the last two input snapshots are put in front of the latent
  window, which is zero-padded in front by its own length (time is not periodic: the padding keeps the end of
  the window from wrapping onto its start) and resampled by a spectral convolution with a spectral bias (scaled
  by ``delta``) onto ``out_channels + 2`` steps plus the padding; the last ``out_channels`` are kept and the last
  input snapshot is added (a residual in time).

The time direction keeps ``modes_t`` frequencies of the real FFT (the last transformed dimension); a window too
short for them is zero-padded in front as the output layer's is. ``output_modes`` and ``output_modes_t`` size the
output layer alone: the Spectral-Refiner fine-tunes that layer, which the paper gives more modes than the others
(it enlarges the layer after training; here the layer has its size from the start and trains in both stages).

Layout: input ``(batch, in_channels, x, y)``, output ``(batch, out_channels, x, y)``: snapshots as channels, as
the ``navier_stokes`` data set stores them. Any grid with at least ``2 * modes`` points per side.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sweeplab_modules.layers import PointwiseLinear, PointwiseMLP, SpectralConv, grid_coordinates, make_activation
from sweeplab_modules.layers.validation import check_grid_input, checked_choice, checked_size

__all__ = ["SFNO"]

# Input snapshots put in front of the latent window in the output layer (the paper's code: two).
_OUTPUT_PREFIX = 2


class SFNO(nn.Module):
    """SFNO, ``(batch, in_channels, x, y) -> (batch, out_channels, x, y)`` (see the module docstring).

    Defaults are a small network; the registry's ``paper`` preset holds the published setting for the FNO
    Navier-Stokes data (width 20, 12 spatial and 5 temporal modes, 10 latent steps, beta 0.02).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        width: int = 8,
        modes: int = 6,
        modes_t: int = 3,
        n_layers: int = 4,
        latent_steps: int = 6,
        channel_expansion: int = 32,
        beta: float = 0.02,
        delta: float = 0.1,
        output_modes: int | None = None,
        output_modes_t: int | None = None,
        activation: Literal["gelu", "relu", "silu", "tanh", "polyrelu", "polynorm"] = "gelu",
    ) -> None:
        super().__init__()
        self.in_channels = checked_size("in_channels", in_channels, minimum=1)
        self.out_channels = checked_size("out_channels", out_channels, minimum=1)
        width = checked_size("width", width, minimum=1)
        modes = checked_size("modes", modes, minimum=1)
        modes_t = checked_size("modes_t", modes_t, minimum=1)
        n_layers = checked_size("n_layers", n_layers, minimum=1)
        self.latent_steps = checked_size("latent_steps", latent_steps, minimum=1)
        channel_expansion = checked_size("channel_expansion", channel_expansion, minimum=1)
        output_modes = checked_size("output_modes", modes if output_modes is None else output_modes, minimum=1)
        output_modes_t = checked_size(
            "output_modes_t", modes_t if output_modes_t is None else output_modes_t, minimum=1
        )
        activation = checked_choice("activation", activation, ("gelu", "relu", "silu", "tanh", "polyrelu", "polynorm"))
        if not math.isfinite(beta) or not math.isfinite(delta):
            raise ValueError(f"beta and delta must be finite, got {beta!r}, {delta!r}")
        self.beta = float(beta)
        self.delta = float(delta)
        self.time_channels = width
        self.lift_norm = nn.GroupNorm(1, width + 3, eps=1e-6)
        self.lift_projection = PointwiseLinear(width + 3, width)
        self.lift_conv = SpectralConv(width, width, (modes, modes, modes_t))
        self.spectral = nn.ModuleList(SpectralConv(width, width, (modes, modes, modes_t)) for _ in range(n_layers - 1))
        self.mlps = nn.ModuleList(PointwiseMLP(width, channel_expansion, width) for _ in range(n_layers - 1))
        self.pointwise = nn.ModuleList(PointwiseLinear(width, width) for _ in range(n_layers - 1))
        self.activations = nn.ModuleList(make_activation(activation) for _ in range(n_layers - 1))
        self.reduction = PointwiseLinear(width, 1)
        self.output_conv = SpectralConv(1, 1, (output_modes, output_modes, output_modes_t), bias_scale=delta)

    def forward(self, x: Tensor) -> Tensor:
        check_grid_input(x, self.in_channels)
        w = x.permute(0, 2, 3, 1).unsqueeze(1)  # (batch, 1, x, y, t): time last, the real FFT's halved dim
        v = self.lift_projection(self.lift_norm(w + self._positional_encoding(w)))
        v = _resampled_in_time(self.lift_conv, v, self.latent_steps, padding=0)
        for spectral, mlp, pointwise, activation in zip(
            self.spectral, self.mlps, self.pointwise, self.activations, strict=True
        ):
            v = activation(mlp(spectral(v)) + pointwise(v))
        prefix = w[..., -_OUTPUT_PREFIX:]
        v = torch.cat([prefix, self.reduction(v)], dim=-1)
        steps = self.out_channels + prefix.shape[-1]
        v = _resampled_in_time(self.output_conv, v, steps, padding=v.shape[-1])[..., -self.out_channels :]
        return (v + w[..., -1:]).squeeze(1).permute(0, 3, 1, 2)

    def _positional_encoding(self, w: Tensor) -> Tensor:
        """``(1, width + 3, x, y, t)``: the coordinates, then ``exp(beta t) sin(pi (k + 1) t)`` (even ``k``) or
        ``cos`` (odd ``k``), ``t = 1 .. in_channels`` over the whole trajectory's ``in + out`` snapshots."""
        *_, nx, ny, nt = w.shape
        coordinates = grid_coordinates((nx, ny), 1, device=w.device, dtype=w.dtype)
        coordinates = coordinates[..., None].expand(-1, -1, -1, -1, nt)
        t = torch.arange(1, nt + 1, device=w.device, dtype=w.dtype) / (self.in_channels + self.out_channels)
        frequencies = math.pi * torch.arange(1, self.time_channels + 1, device=w.device, dtype=w.dtype)
        phases = frequencies[:, None] * t
        even = torch.arange(self.time_channels, device=w.device)[:, None] % 2 == 0
        waves = torch.where(even, phases.sin(), phases.cos())
        time_channels = torch.cat([t[None], torch.exp(self.beta * t) * waves])  # (width + 1, t)
        time_channels = time_channels[None, :, None, None, :].expand(1, -1, nx, ny, nt)
        return torch.cat([coordinates, time_channels], dim=1)


def _resampled_in_time(conv: SpectralConv, v: Tensor, steps: int, padding: int) -> Tensor:
    """``conv`` from ``v``'s time window onto ``steps`` snapshots, the window zero-padded in front by ``padding``
    points (more where its temporal modes need a longer window) and the padding's share cut off the result."""
    needed = 2 * (conv.modes[-1] - 1)
    padding = max(padding, needed - v.shape[-1], needed - steps, 0)
    padded = F.pad(v, (padding, 0))
    return conv(padded, output_grid=(*v.shape[2:-1], steps + padding))[..., padding:]
