"""Initialisation at criticality (The Principles of Deep Learning Theory, ch. 5): the preactivation variance of
deep ReLU and tanh MLPs follows the book's depth laws at criticality and drifts exponentially off it; the GELU
and SiLU values solve the book's criticality conditions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sweeplab_modules.layers.branch_trunk import ConvEncoder, FullyConnected
from sweeplab_modules.layers.criticality import (
    CRITICAL_VARIANCES,
    critical_variances,
    initialize_at_criticality,
    preactivation_variances,
)

DEPTH, WIDTH, NETWORKS = 32, 256, 16


def _preactivation_variances(activation: str, weight_variance: float, bias_variance: float) -> np.ndarray:
    """The kernel of DEPTH-layer, WIDTH-wide MLPs on unit-variance inputs, averaged over NETWORKS of them."""
    return np.array(
        preactivation_variances(activation, weight_variance, bias_variance, depth=DEPTH, width=WIDTH, networks=NETWORKS)
    )


def test_relu_variance_is_flat_at_criticality_and_explodes_or_vanishes_off_it() -> None:
    bias_variance, weight_variance = critical_variances("relu")
    assert (bias_variance, weight_variance) == (0.0, 2.0)
    critical = _preactivation_variances("relu", weight_variance, bias_variance)
    ratio = critical / critical[0]
    assert ratio.min() > 0.6 and ratio.max() < 1.6, ratio  # an ensemble of 16 still fluctuates by ~20 %
    # Off criticality the variance changes by C_W / 2 per layer: 0.8^31 ~ 1e-3, 1.25^31 ~ 1e3.
    below = _preactivation_variances("relu", 0.8 * weight_variance, bias_variance)
    above = _preactivation_variances("relu", 1.25 * weight_variance, bias_variance)
    assert below[-1] / below[0] < 1e-2 and above[-1] / above[0] > 1e2


def test_tanh_variance_decays_as_the_book_power_law_at_criticality_and_exponentially_below_it() -> None:
    bias_variance, weight_variance = critical_variances("tanh")
    assert (bias_variance, weight_variance) == (0.0, 1.0)
    layers = np.array([8, 16, 32])
    # K*=0 class: K_{l+1} = K_l - 2 K_l^2 + ... for tanh, so K_l -> 1 / (2 l), whatever the input's scale.
    critical = _preactivation_variances("tanh", weight_variance, bias_variance)[layers - 1] * 2 * layers
    assert critical.min() > 0.8 and critical.max() < 1.4, critical
    below = _preactivation_variances("tanh", 0.8, bias_variance)
    assert below[-1] * 2 * DEPTH < 1e-2  # vanishes as 0.8^l
    # Above, the variance settles at a non-zero fixed point K* instead of decaying: the chaotic phase.
    above = _preactivation_variances("tanh", 1.25, bias_variance)
    assert above[-1] * 2 * DEPTH > 5 and above[-1] / above[23] == pytest.approx(1.0, abs=0.05)


def _gaussian_mean(function, variance: float) -> float:  # type: ignore[no-untyped-def]
    points, weights = np.polynomial.hermite_e.hermegauss(160)
    return float(np.sum(weights * function(math.sqrt(variance) * points)) / np.sum(weights))


@pytest.mark.parametrize("activation", ["gelu", "silu"])
def test_gelu_and_silu_values_solve_the_criticality_conditions(activation: str) -> None:
    bias_variance, weight_variance, fixed_point = CRITICAL_VARIANCES[activation]
    assert fixed_point is not None
    module = {"gelu": nn.GELU(), "silu": nn.SiLU()}[activation]

    def sigma(z: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(z)).numpy()

    def derivative(z: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(z).requires_grad_(True)
        module(inputs).sum().backward()
        return inputs.grad.numpy()  # type: ignore[union-attr]

    k = fixed_point
    assert bias_variance + weight_variance * _gaussian_mean(lambda z: sigma(z) ** 2, k) == pytest.approx(k, rel=1e-5)
    chi_parallel = weight_variance / (2 * k**2) * _gaussian_mean(lambda z: sigma(z) ** 2 * (z**2 - k), k)
    chi_perpendicular = weight_variance * _gaussian_mean(lambda z: derivative(z) ** 2, k)
    assert chi_parallel == pytest.approx(1.0, abs=1e-5) and chi_perpendicular == pytest.approx(1.0, abs=1e-5)


def test_every_linear_and_convolution_layer_gets_the_critical_variances() -> None:
    torch.manual_seed(0)
    encoder = ConvEncoder(1, (29, 29), 64, 2, "relu")
    initialize_at_criticality(encoder, "relu")
    first, second = (layer for layer in encoder.modules() if isinstance(layer, nn.Conv2d))
    for layer in (first, second):
        fan_in = layer.in_channels * 25
        assert float(layer.weight.detach().std()) == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.05)
        assert float(layer.bias.detach().abs().max()) == 0.0
    net = FullyConnected([64, 256, 256], "gelu", activate_last=True)
    initialize_at_criticality(net, "gelu")
    assert float(net[2].bias.detach().std()) == pytest.approx(math.sqrt(0.1729224), rel=0.15)
    with pytest.raises(ValueError, match="relu, tanh, gelu, silu; trunk_activation is 'silu_sin'"):
        initialize_at_criticality(net, "silu_sin", "trunk_activation")
