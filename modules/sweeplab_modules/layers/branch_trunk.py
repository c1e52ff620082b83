"""Building blocks of branch/trunk operator networks (DeepONet, MultiONet): activations, MLPs, CNN encoder."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from sweeplab_modules.layers.pointwise import ACTIVATIONS, elementwise

__all__ = [
    "BRANCH_TRUNK_ACTIVATIONS",
    "ConvEncoder",
    "FullyConnected",
    "make_branch_trunk_activation",
    "periodic_features",
]


class _SineResidual(nn.Module):
    """``act(sin(pi (x + 1))) + x``: a periodic feature plus the identity (MultiONet's trunk activations)."""

    def __init__(self, act: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        return self.act(torch.sin(math.pi * (x + 1.0))) + x


class SiLUSin(_SineResidual):
    def __init__(self) -> None:
        super().__init__(nn.functional.silu)


class TanhSin(_SineResidual):
    def __init__(self) -> None:
        super().__init__(torch.tanh)


class SiLUResidual(nn.Module):
    """``silu(x) + x`` (MultiONet's branch activation for discontinuous inputs)."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.silu(x) + x


# The pointwise layers' activations plus those of the MultiONet authors' code (Zang & Koutsourelakis 2025).
BRANCH_TRUNK_ACTIVATIONS: dict[str, Callable[[int], nn.Module]] = {
    **ACTIVATIONS,
    "silu_sin": elementwise(SiLUSin),
    "tanh_sin": elementwise(TanhSin),
    "silu_id": elementwise(SiLUResidual),
}


def make_branch_trunk_activation(name: str, feature_dim: int = -1) -> nn.Module:
    """A fresh ``name`` activation; features are the last dimension in the MLPs, the channels (1) in encoders."""
    try:
        factory = BRANCH_TRUNK_ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(BRANCH_TRUNK_ACTIVATIONS)})") from None
    return factory(feature_dim)


def periodic_features(points: Tensor, harmonics: int) -> Tensor:
    """``cos(2 pi k x_i), sin(2 pi k x_i)`` for ``k = 1 .. harmonics`` and every coordinate ``x_i`` of ``points``
    ``(..., d)``: ``(..., 2 * harmonics * d)``. A trunk net on these features has exactly periodic outputs on the
    unit cell (the periodic DeepONet of Lu et al. 2022, "A comprehensive and fair comparison of two neural
    operators", CMAME 393)."""
    frequencies = 2 * math.pi * torch.arange(1, harmonics + 1, device=points.device, dtype=points.dtype)
    phases = (points[..., None] * frequencies).flatten(start_dim=-2)
    return torch.cat([torch.cos(phases), torch.sin(phases)], dim=-1)


class FullyConnected(nn.Sequential):
    """Linear layers ``widths[0] -> widths[1] -> ... -> widths[-1]`` with ``activation`` between them, and after
    the last one too when ``activate_last`` (DeepONet's trunk net: its outputs are activated basis functions)."""

    def __init__(self, widths: Sequence[int], activation: str, *, activate_last: bool) -> None:
        if len(widths) < 2:
            raise ValueError(f"a fully connected net needs at least an input and an output width, got {widths}")
        layers: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(fan_in, fan_out))
            if activate_last or index < len(widths) - 2:
                layers.append(make_branch_trunk_activation(activation))
        super().__init__(*layers)


class ConvEncoder(nn.Module):
    """Strided convolutions, each followed by ``activation``, then flattened: ``(batch, channels, *sensors) ->
    (batch, out_features)``; the branch encoder of the DeepONet/MultiONet authors' 2D examples.

    Unpadded ``kernel_size`` convolutions with the given ``stride``; channels start at ``channels`` and double at
    every layer (the published 2D Darcy encoders: 64 -> 128 and 128 -> 256, kernel 5, stride 2, 29 x 29 sensors).
    """

    def __init__(
        self,
        in_channels: int,
        sensors: Sequence[int],
        channels: int,
        n_layers: int,
        activation: str,
        kernel_size: int = 5,
        stride: int = 2,
    ) -> None:
        super().__init__()
        convolution = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[len(sensors)]
        layers: list[nn.Module] = []
        size = list(sensors)
        fan_in = in_channels
        for index in range(n_layers):
            fan_out = channels * 2**index
            size = [(n - kernel_size) // stride + 1 for n in size]
            if min(size) < 1:
                raise ValueError(
                    f"{n_layers} convolutions of kernel {kernel_size} and stride {stride} need more than "
                    f"{tuple(sensors)} sensors: use more sensors or fewer encoder layers"
                )
            layers += [
                convolution(fan_in, fan_out, kernel_size, stride=stride),
                make_branch_trunk_activation(activation, feature_dim=1),
            ]
            fan_in = fan_out
        self.layers = nn.Sequential(*layers)
        self.out_features = fan_in * math.prod(size)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x).flatten(start_dim=1)
