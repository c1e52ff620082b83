"""DeepONet for sound propagation with parametrised sources (Borrel-Jensen, Goswami, Engsig-Karup, Karniadakis,
Jeong, PNAS 2023; authors' JAX code dtu-act/deeponet-acoustic-wave-prop).

G(p0)(x, y, t) = sum_k b_k(p0) t_k(x, y, t) + b0: the branch reads the source's initial pressure pulse p0 at a
fixed sensor grid (the source position is encoded by the sampled pulse, as in the authors' data), the trunk reads
space-time coordinates. Output channel c of the grid output is the snapshot at t = (c + 1) / out_channels of the
normalised time span (the layout of the ``room_acoustics`` data: snapshots at k T / n_times, k = 1 .. n_times);
space is normalised to [-1, 1] per axis (the authors' normalisation), grid nodes at both walls.

Networks (``architecture``):
- ``mod_mlp``: the modified MLP of Wang, Teng & Perdikaris (2021) the authors use for branch and trunk: two
  encoders U = act(W_u z), V = act(W_v z) of the input; every hidden layer h <- act(W h + b) is followed by
  h <- h * U + (1 - h) * V; a linear output layer.
- ``mlp``: plain hidden layers and a linear output.
With ``activation='sin'`` the first layer reads ``angular_frequency`` times its input (30: SIREN) and the weights
start as in the authors' code: U(-1/fan_in, 1/fan_in) for the layers that read the input, U(-sqrt(6/fan_in)/30,
sqrt(6/fan_in)/30) for the others, zero biases; tanh and relu start Glorot- / He-uniform.

The trunk reads (x, y, t) and, for each of ``feature_frequencies`` f, sin(2 pi f x), cos(2 pi f x) of each space
coordinate (our reading of the authors' fixed Fourier feature expansion ``f0_feat``; their 2D setting lists
1.458, 0.729, 0.486 in normalised units). Preset ``paper``: the repository's default networks (branch and trunk
modified MLPs of 5 hidden sine layers of 2048, p = 100 basis functions; Adam lr 1e-3 decayed x 0.9 every 2000
steps, MSE); ``small``: a CPU size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from sweeplab_modules.layers.branch_trunk import make_branch_trunk_activation
from sweeplab_modules.layers.sensors import grid_points, sample_on_sensors

__all__ = ["AcousticDeepONet", "ModifiedMLP"]

_ACTIVATIONS = ("sin", "tanh", "relu", "polyrelu", "polynorm")


class _Sine(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


def _activation(name: str) -> nn.Module:
    """A fresh activation module: one per layer, so that learned ones (PolyCom) have coefficients per layer."""
    return _Sine() if name == "sin" else make_branch_trunk_activation(name)


class ModifiedMLP(nn.Module):
    """``n_hidden`` hidden layers of ``width`` and a linear output; ``modified`` adds the U/V gating (see module)."""

    def __init__(
        self,
        in_features: int,
        width: int,
        n_hidden: int,
        out_features: int,
        activation: str,
        angular_frequency: float,
        modified: bool,
    ) -> None:
        super().__init__()
        self.angular_frequency = angular_frequency if activation == "sin" else 1.0
        self.hidden = nn.ModuleList([nn.Linear(in_features if i == 0 else width, width) for i in range(n_hidden)])
        self.activations = nn.ModuleList(_activation(activation) for _ in range(n_hidden))
        self.output = nn.Linear(width, out_features)
        self.encoders = nn.ModuleList([nn.Linear(in_features, width) for _ in range(2)]) if modified else None
        self.encoder_activations = nn.ModuleList(_activation(activation) for _ in range(2)) if modified else None
        reading_input = [self.hidden[0], *(self.encoders or [])]
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                _initialise(layer, activation, reads_input=any(layer is other for other in reading_input))

    def forward(self, z: Tensor) -> Tensor:
        gates = None
        if self.encoders is not None and self.encoder_activations is not None:
            gates = [act(encoder(z)) for encoder, act in zip(self.encoders, self.encoder_activations, strict=True)]
        h = z * self.angular_frequency
        for layer, act in zip(self.hidden, self.activations, strict=True):
            h = act(layer(h))
            if gates is not None:
                h = h * gates[0] + (1.0 - h) * gates[1]
        return self.output(h)


def _initialise(layer: nn.Linear, activation: str, *, reads_input: bool) -> None:
    fan_in = layer.in_features
    with torch.no_grad():
        if activation == "sin":
            bound = 1.0 / fan_in if reads_input else math.sqrt(6.0 / fan_in) / 30.0
            layer.weight.uniform_(-bound, bound)
        elif activation == "tanh":
            nn.init.xavier_uniform_(layer.weight)
        else:
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        layer.bias.zero_()


class AcousticDeepONet(nn.Module):
    """Branch on the input at ``sensors`` x ``sensors`` points, trunk on (x, y, t) plus Fourier features."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        sensors: int = 33,
        n_basis: int = 100,
        branch_width: int = 2048,
        branch_layers: int = 5,
        trunk_width: int = 2048,
        trunk_layers: int = 5,
        architecture: Literal["mod_mlp", "mlp"] = "mod_mlp",
        activation: Literal["sin", "tanh", "relu", "polyrelu", "polynorm"] = "sin",
        angular_frequency: float = 30.0,
        feature_frequencies: Sequence[float] = (1.458, 0.729, 0.486),
    ) -> None:
        super().__init__()
        if sensors < 2 or n_basis < 1 or min(branch_width, branch_layers, trunk_width, trunk_layers) < 1:
            raise ValueError("sensors must be >= 2; n_basis, widths and layer counts >= 1")
        if activation not in _ACTIVATIONS or architecture not in ("mod_mlp", "mlp"):
            raise ValueError(f"unknown activation {activation!r} or architecture {architecture!r}")
        self.sensors = (sensors, sensors)
        self.out_channels = out_channels
        self.register_buffer("frequencies", torch.tensor([float(f) for f in feature_frequencies]))
        modified = architecture == "mod_mlp"
        self.branch = ModifiedMLP(
            in_channels * sensors**2, branch_width, branch_layers, n_basis, activation, angular_frequency, modified
        )
        trunk_inputs = 3 + 4 * len(feature_frequencies)
        self.trunk = ModifiedMLP(
            trunk_inputs, trunk_width, trunk_layers, n_basis, activation, angular_frequency, modified
        )
        self.bias = nn.Parameter(torch.zeros(()))

    def trunk_features(self, points: Tensor) -> Tensor:
        """(x, y, t) in [-1, 1]^2 x (0, 1] -> the trunk's input: the coordinates and sin, cos(2 pi f x), ..."""
        phases = 2 * math.pi * points[..., :2, None] * self.frequencies
        return torch.cat([points, torch.sin(phases).flatten(-2), torch.cos(phases).flatten(-2)], dim=-1)

    def query(self, x: Tensor, points: Tensor) -> Tensor:
        """The output at ``points`` (n_points, 3) of (x, y, t), for inputs ``x`` (batch, channels, *grid)."""
        coefficients = self.branch(sample_on_sensors(x, self.sensors, periodic=False).flatten(start_dim=1))
        basis = self.trunk(self.trunk_features(points))
        return coefficients @ basis.T + self.bias

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected input (batch, channels, nx, ny), got {tuple(x.shape)}")
        grid = tuple(x.shape[-2:])
        space = 2.0 * grid_points(grid, periodic=False, device=x.device, dtype=x.dtype) - 1.0
        times = torch.arange(1, self.out_channels + 1, device=x.device, dtype=x.dtype) / self.out_channels
        points = torch.cat(
            [space.repeat(self.out_channels, 1), times.repeat_interleave(space.shape[0])[:, None]], dim=1
        )
        return self.query(x, points).view(x.shape[0], self.out_channels, *grid)
