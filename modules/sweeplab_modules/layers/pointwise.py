"""Pointwise (1x1) layers on channel-first fields ``(batch, channels, *grid)`` of any spatial dimension."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sweeplab_modules.layers.polycom import PolyNorm, PolyReLU

__all__ = ["ACTIVATIONS", "PointwiseLinear", "PointwiseMLP", "elementwise", "make_activation"]


def elementwise(activation: Callable[[], nn.Module]) -> Callable[[int], nn.Module]:
    """An activation factory for ``ACTIVATIONS`` whose activation acts on each entry alone."""
    return lambda feature_dim: activation()


# name -> factory of a fresh module, given the dimension that holds the features of the tensors it sees (1 for
# channel-first fields, -1 for MLPs); only activations that mix features (PolyNorm) use it.
ACTIVATIONS: dict[str, Callable[[int], nn.Module]] = {
    "gelu": elementwise(nn.GELU),
    "relu": elementwise(nn.ReLU),
    "silu": elementwise(nn.SiLU),
    "tanh": elementwise(nn.Tanh),
    "polyrelu": elementwise(PolyReLU),
    "polynorm": lambda feature_dim: PolyNorm(feature_dim=feature_dim),
}


def make_activation(name: str, feature_dim: int = 1) -> nn.Module:
    """A fresh ``name`` activation for tensors whose features are dimension ``feature_dim`` (channel-first: 1)."""
    try:
        factory = ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})") from None
    return factory(feature_dim)


class PointwiseLinear(nn.Linear):
    """A linear map of the channel dimension at every grid point: a 1x1 convolution in any dimension.

    Same parameters and initialisation as ``nn.Linear(in_features, out_features)``, which equal those of a 1x1
    ``nn.ConvNd`` (same fan-in), so one class serves 1D, 2D and 3D grids.
    """

    def forward(self, x: Tensor) -> Tensor:
        # (out, in) @ (in, points) per sample, as one batched product with the weight broadcast over the
        # batch: unlike moving channels last for nn.Linear, it needs no permute copies and returns a
        # contiguous channel-first output (forward + backward 1.5-4x faster on CPU than Linear with permutes).
        batch = x.shape[0]
        points = x.reshape(batch, self.in_features, -1)
        weight, bias = self.weight.expand(batch, -1, -1), self.bias
        y = torch.bmm(weight, points) if bias is None else torch.baddbmm(bias[:, None], weight, points)
        return y.view(batch, self.out_features, *x.shape[2:])


class PointwiseMLP(nn.Sequential):
    """Two pointwise linear maps with an activation between: ``in -> hidden -> act -> out`` at every point."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, activation: str = "gelu") -> None:
        super().__init__(
            PointwiseLinear(in_channels, hidden_channels),
            make_activation(activation),
            PointwiseLinear(hidden_channels, out_channels),
        )
