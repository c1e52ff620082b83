"""Polynomial composition activations, PolyCom (Zhuo, Wang, Zeng, Li, Zhou, Ma, "Polynomial Composition
Activations: Unleashing the Dynamics of Large Language Models", ICLR 2025, arXiv 2411.03884):

- PolyReLU of order r: ``sum_{i=0..r} a_i ReLU(x)^i``;
- PolyNorm of order r: ``sum_{i=0..r} a_i N(x^i)``, ``N`` the normalisation over the feature dimension. The paper
  writes ``N(v) = v / ||v||_2``; the authors' code uses the root mean square without a gain,
  ``v / sqrt(mean(v^2) + 1e-6)``, which we follow (``sqrt(features)`` times the paper's, so the terms keep unit
  scale whatever the width). Each power is normalised before it is weighted, so ``x^3`` cannot overflow and the
  output does not change when ``x`` is scaled by a positive factor.

``a_0`` (a bias, as ``x^0`` and its normalisation are constant) and ``a_1 .. a_r`` are learnable scalars, one set
per activation module, shared by all features; the paper initialises ``a_i = 1 / r`` and ``a_0 = 0`` and uses
``r = 3`` throughout. In a channel-first field ``(batch, channels, *grid)`` the features are the channels at each
point (``feature_dim=1``); in an MLP's ``(..., features)`` the last dimension.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["PolyNorm", "PolyReLU"]

_EPS = 1e-6


class _PolynomialComposition(nn.Module):
    def __init__(self, order: int) -> None:
        super().__init__()
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"the order of a polynomial composition must be a positive integer, got {order!r}")
        self.order = order
        self.coefficients = nn.Parameter(torch.full((order,), 1.0 / order))  # a_1 .. a_r
        self.bias = nn.Parameter(torch.zeros(()))  # a_0

    def term(self, x: Tensor, power: int) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        output = self.bias + self.coefficients[0] * self.term(x, 1)
        for power in range(2, self.order + 1):
            output = output + self.coefficients[power - 1] * self.term(x, power)
        return output

    def extra_repr(self) -> str:
        return f"order={self.order}"


class PolyReLU(_PolynomialComposition):
    """``a_0 + sum_i a_i ReLU(x)^i``, elementwise."""

    def __init__(self, order: int = 3) -> None:
        super().__init__(order)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(torch.relu(x))

    def term(self, x: Tensor, power: int) -> Tensor:
        return x if power == 1 else x.pow(power)


class PolyNorm(_PolynomialComposition):
    """``a_0 + sum_i a_i N(x^i)``, ``N`` the root-mean-square normalisation over ``feature_dim``."""

    def __init__(self, order: int = 3, feature_dim: int = -1) -> None:
        super().__init__(order)
        self.feature_dim = feature_dim

    def term(self, x: Tensor, power: int) -> Tensor:
        v = x if power == 1 else x.pow(power)
        return v * torch.rsqrt(v.pow(2).mean(self.feature_dim, keepdim=True) + _EPS)

    def extra_repr(self) -> str:
        return f"order={self.order}, feature_dim={self.feature_dim}"
