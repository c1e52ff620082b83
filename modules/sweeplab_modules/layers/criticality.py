"""Initialisation at criticality (Roberts, Yaida, Hanin, "The Principles of Deep Learning Theory", CUP 2022,
arXiv 2106.10165, chapter 5).

Weights ``W ~ N(0, C_W / fan_in)`` and biases ``b ~ N(0, C_b)``. In the infinite-width limit the preactivation
variance (the kernel ``K``) follows ``K_{l+1} = C_b + C_W <sigma(z)^2>_{K_l}``; the network is critical when that
recursion has a fixed point ``K*`` at which both susceptibilities are one,

``chi_par = C_W / (2 K^2) <sigma(z)^2 (z^2 - K)>_K = 1`` (the variance neither grows nor shrinks layer to layer),
``chi_perp = C_W <sigma'(z)^2>_K = 1`` (nor does the distance between two inputs),

so signals and gradients neither explode nor vanish exponentially with depth. By activation class:

- scale-invariant (ReLU): ``C_b = 0, C_W = 2``; every ``K`` is a fixed point, the variance is constant in depth.
- ``K* = 0`` class (tanh: ``sigma(0) = 0``, ``sigma'(0) = 1``): ``C_b = 0, C_W = 1 / sigma'(0)^2 = 1``; the variance
  decays to 0 only as a power law, ``K_l ~ 1 / (2 l)`` for tanh, instead of exponentially.
- GELU and SiLU (SWISH) belong to neither class: ``sigma(0) = 0`` but their ``K* = 0`` point repels (their second
  Taylor coefficient is not zero), and the three conditions above meet at one nonzero ``K*``. The values below
  are our numerical solution of those three equations (Gauss-Hermite quadrature, checked in tests/test_criticality):
  GELU at ``K* = (3 + sqrt 17) / 2 = 3.5616``, SiLU at ``K* = 14.320``. Unlike ReLU's, this fixed point is isolated:
  ``chi_par = 1`` there, so for a first-layer variance near ``K*`` the layer-to-layer change is only of second
  order in ``K - K*`` (slow), but it is not zero as for ReLU, and the book notes such points are only half-stable.
  Measured (bench/criticality.py, BENCHMARKS.md): from ``K*/2`` to ``2 K*`` the variance stays within 11 % for 16
  layers of width 512.

Other activations (PolyCom, MultiONet's periodic ones) have no criticality analysis: asking for it is an error.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sweeplab_modules.layers.branch_trunk import FullyConnected

__all__ = [
    "CRITICAL_VARIANCES",
    "INITIALIZATIONS",
    "critical_variances",
    "initialize_at_criticality",
    "initialize_variances",
    "preactivation_variances",
]

# activation -> (C_b, C_W, K*); K* = 0 for tanh and None for ReLU (every K is a fixed point).
CRITICAL_VARIANCES: dict[str, tuple[float, float, float | None]] = {
    "relu": (0.0, 2.0, None),
    "tanh": (0.0, 1.0, 0.0),
    "gelu": (0.1729224, 1.9830583, (3 + math.sqrt(17)) / 2),
    "silu": (0.5551432, 1.9880047, 14.320089),
}

# A model's ``init`` choices: its published initialisation, or criticality for its activation.
INITIALIZATIONS = ("default", "criticality")

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def critical_variances(activation: str, parameter: str = "activation") -> tuple[float, float]:
    """``(C_b, C_W)`` at criticality for ``activation`` (the value of the model's ``parameter``)."""
    try:
        bias_variance, weight_variance, _ = CRITICAL_VARIANCES[activation]
    except KeyError:
        raise ValueError(
            f"init: criticality is defined for the activations {', '.join(CRITICAL_VARIANCES)}; "
            f"{parameter} is {activation!r}"
        ) from None
    return bias_variance, weight_variance


def initialize_variances(module: nn.Module, weight_variance: float, bias_variance: float) -> None:
    """Every linear and convolution layer in ``module``: ``W ~ N(0, weight_variance / fan_in)``,
    ``b ~ N(0, bias_variance)`` (fan-in: input channels times kernel size)."""
    for layer in module.modules():
        if isinstance(layer, _WEIGHTED):
            fan_in = layer.weight[0].numel()
            nn.init.normal_(layer.weight, 0.0, math.sqrt(weight_variance / fan_in))
            if layer.bias is not None:
                nn.init.normal_(layer.bias, 0.0, math.sqrt(bias_variance))


def initialize_at_criticality(module: nn.Module, activation: str, parameter: str = "activation") -> None:
    """Initialise every linear and convolution layer of ``module`` (a net of one ``activation``, the value of the
    model's ``parameter``) at criticality."""
    bias_variance, weight_variance = critical_variances(activation, parameter)
    initialize_variances(module, weight_variance, bias_variance)


@torch.no_grad()
def preactivation_variances(
    activation: str,
    weight_variance: float,
    bias_variance: float,
    *,
    depth: int,
    width: int,
    networks: int,
    input_variance: float = 1.0,
    batch: int = 8,
    seed: int = 0,
) -> list[float]:
    """The mean squared preactivation of each of the ``depth`` layers of a ``width``-wide MLP of ``activation``,
    initialised with ``(C_W, C_b) = (weight_variance, bias_variance)``, on Gaussian inputs of
    ``input_variance``, averaged over ``networks`` initialisations: the book's kernel ``K_l``, measured (one
    network fluctuates around it by O(depth / width))."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.device("meta"):  # built without PyTorch's initialisation, which is replaced anyway
            net = FullyConnected([width] * (depth + 1), activation, activate_last=True)
        net.to_empty(device="cpu")
        totals = torch.zeros(depth, dtype=torch.float64)
        for _ in range(networks):
            initialize_variances(net, weight_variance, bias_variance)
            x = torch.randn(batch, width) * math.sqrt(input_variance)
            index = 0
            for layer in net:
                x = layer(x)
                if isinstance(layer, nn.Linear):
                    totals[index] += float(x.pow(2).mean())
                    index += 1
        return (totals / networks).tolist()
    finally:
        torch.random.set_rng_state(generator_state)
