"""PolyCom activations (PolyReLU, PolyNorm; Zhuo et al., ICLR 2025): the paper's formulas and initialisation,
learnable coefficients, and both through the shared activation factories."""

from __future__ import annotations

import pytest
import torch

from sweeplab_modules.layers import ACTIVATIONS, PolyNorm, PolyReLU, make_activation
from sweeplab_modules.layers.branch_trunk import (
    BRANCH_TRUNK_ACTIVATIONS,
    ConvEncoder,
    FullyConnected,
    make_branch_trunk_activation,
)


def _rms_normalised(v: torch.Tensor, dim: int) -> torch.Tensor:
    return v / torch.sqrt((v * v).mean(dim, keepdim=True) + 1e-6)


def test_initialisation_is_the_papers() -> None:
    for activation in (PolyReLU(), PolyNorm()):
        assert activation.order == 3
        assert activation.coefficients.tolist() == pytest.approx([1 / 3] * 3) and float(activation.bias.detach()) == 0.0
        assert sum(p.numel() for p in activation.parameters()) == 4  # a_0 .. a_3, shared by every feature
    assert PolyReLU(order=2).coefficients.tolist() == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="positive integer"):
        PolyNorm(order=0)


def test_polyrelu_is_the_polynomial_of_the_relu() -> None:
    torch.manual_seed(0)
    activation = PolyReLU()
    with torch.no_grad():
        activation.coefficients.copy_(torch.tensor([0.5, -0.25, 2.0]))
        activation.bias.fill_(0.1)
    x = torch.randn(4, 7, 5)
    r = torch.clamp(x, min=0)
    expected = 0.1 + 0.5 * r - 0.25 * r * r + 2.0 * r * r * r
    assert torch.allclose(activation(x), expected, atol=1e-6)
    assert torch.all(activation(-x.abs()) == 0.1)  # negative inputs give a_0 only


@pytest.mark.parametrize("feature_dim", [1, -1])
def test_polynorm_normalises_each_power_over_the_features(feature_dim: int) -> None:
    torch.manual_seed(0)
    activation = PolyNorm(feature_dim=feature_dim)
    with torch.no_grad():
        activation.coefficients.copy_(torch.tensor([1.0, -0.5, 0.25]))
        activation.bias.fill_(-0.2)
    x = torch.randn(3, 6, 8, 5)
    expected = (
        -0.2
        + _rms_normalised(x, feature_dim)
        - 0.5 * _rms_normalised(x * x, feature_dim)
        + 0.25 * _rms_normalised(x * x * x, feature_dim)
    )
    assert torch.allclose(activation(x), expected, atol=1e-5)
    # Each normalised power has unit mean square along the features, and a positive rescaling of the input
    # changes nothing (what keeps x^3 from overflowing in low precision).
    assert torch.allclose(activation(1e4 * x), activation(x), atol=1e-4)


def test_coefficients_learn() -> None:
    torch.manual_seed(0)
    for activation in (PolyReLU(), PolyNorm()):
        activation(torch.randn(16, 8)).pow(2).mean().backward()
        assert activation.coefficients.grad is not None and activation.coefficients.grad.abs().min() > 0
        assert activation.bias.grad is not None and float(activation.bias.grad) != 0


def test_factories_build_fresh_modules_with_the_right_feature_dimension() -> None:
    assert {"polyrelu", "polynorm"} <= set(ACTIVATIONS) <= set(BRANCH_TRUNK_ACTIVATIONS)
    first, second = make_activation("polynorm"), make_activation("polynorm")
    assert isinstance(first, PolyNorm) and first.feature_dim == 1  # channel-first fields
    assert first.coefficients is not second.coefficients  # one set of coefficients per activation module
    assert isinstance(make_activation("polyrelu"), PolyReLU)
    assert make_branch_trunk_activation("polynorm").feature_dim == -1  # MLP features
    mlp = FullyConnected([3, 16, 16, 4], "polynorm", activate_last=True)
    assert [m.feature_dim for m in mlp if isinstance(m, PolyNorm)] == [-1, -1, -1]
    encoder = ConvEncoder(1, (17, 17), 4, 2, "polynorm")
    assert [m.feature_dim for m in encoder.modules() if isinstance(m, PolyNorm)] == [1, 1]
    assert encoder(torch.randn(2, 1, 17, 17)).shape == (2, encoder.out_features)
