"""The fast SpectralConv and PointwiseLinear against the reference formulations they replace.

The reference classes below are the FNO code's original formulations, kept here as independent references
(and imported by ``bench/spectral.py`` to time them): the spectral convolution as ``rfftn``, one complex
einsum per retained frequency block into a zero-filled spectrum, ``irfftn``; the pointwise linear map as
``nn.Linear`` on channels moved last. They subclass the fast classes only to share parameters and checks;
their ``forward`` is their own.
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sweeplab_modules.layers import PointwiseLinear, SpectralConv
from sweeplab_modules.operators.fno import FNO1d, FNO2d


class ReferenceSpectralConv(SpectralConv):
    def forward(self, x: Tensor) -> Tensor:
        grid_shape = tuple(x.shape[-self.spatial_dims :])
        self._check_resolution(x, grid_shape)
        fft_dims = tuple(range(-self.spatial_dims, 0))
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x_hat = torch.fft.rfftn(x.to(compute_dtype), dim=fft_dims)
            weight = torch.view_as_complex(self.weight.to(compute_dtype))
            out_hat = x_hat.new_zeros(x.shape[0], self.out_channels, *x_hat.shape[2:])
            # Blocks in weight order: each leading dim's non-negative then negative frequencies.
            leading_sizes = zip(self.modes[:-1], grid_shape[:-1], strict=True)
            leading = [(slice(0, m), slice(n - m, n)) for m, n in leading_sizes]
            for block, corner in enumerate(itertools.product(*leading, (slice(0, self.modes[-1]),))):
                index = (slice(None), slice(None), *corner)
                out_hat[index] = torch.einsum("bi...,io...->bo...", x_hat[index], weight[block])
            y = torch.fft.irfftn(out_hat, s=grid_shape, dim=fft_dims)
        return y.to(x.dtype)


class ReferencePointwiseLinear(PointwiseLinear):
    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x.movedim(1, -1), self.weight, self.bias).movedim(-1, 1)


def with_reference_layers(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose SpectralConv and PointwiseLinear layers compute the reference way.

    Only ``forward`` differs between a class and its reference subclass, so swapping the class of each copied
    module keeps its parameters, state-dict keys and everything else.
    """
    reference = copy.deepcopy(model)
    for module in reference.modules():
        if type(module) is SpectralConv:
            module.__class__ = ReferenceSpectralConv
        elif type(module) is PointwiseLinear:
            module.__class__ = ReferencePointwiseLinear
    return reference


def relative_difference(actual: Tensor, expected: Tensor) -> float:
    return (
        torch.linalg.vector_norm(actual.double() - expected.double()) / torch.linalg.vector_norm(expected.double())
    ).item()


def _random_spectral_pair(
    in_channels: int, out_channels: int, modes: tuple[int, ...], dtype: torch.dtype
) -> tuple[SpectralConv, ReferenceSpectralConv]:
    layer = SpectralConv(in_channels, out_channels, modes).to(dtype)
    with torch.no_grad():
        layer.weight.normal_()  # not the default init, whose positive entries could hide sign errors
    reference = ReferenceSpectralConv(in_channels, out_channels, modes).to(dtype)
    reference.load_state_dict(layer.state_dict())
    return layer, reference


def _assert_same_function(layer: nn.Module, reference: nn.Module, x: Tensor, tolerance: float) -> None:
    """Same output, and same gradients w.r.t. the input and every parameter, for a random cotangent."""
    x_layer = x.clone().requires_grad_()
    x_reference = x.clone().requires_grad_()
    output = layer(x_layer)
    expected = reference(x_reference)
    assert output.dtype == expected.dtype == x.dtype
    assert output.shape == expected.shape
    assert relative_difference(output, expected) < tolerance

    cotangent = torch.randn_like(expected)
    (output * cotangent).sum().backward()
    (expected * cotangent).sum().backward()
    assert relative_difference(x_layer.grad, x_reference.grad) < tolerance
    parameters = dict(reference.named_parameters())
    for name, parameter in layer.named_parameters():
        assert relative_difference(parameter.grad, parameters[name].grad) < tolerance, name


GRIDS_AND_MODES = [
    ((20,), (6,)),
    ((21,), (11,)),  # odd size, every frequency kept
    ((10,), (6,)),  # smallest grid for 6 modes: the last kept bin is the Nyquist bin
    ((16, 16), (5, 4)),
    ((13, 11), (4, 5)),  # odd sizes
    ((12, 10), (6, 6)),  # smallest grid: leading dim exactly 2 * modes, last dim up to Nyquist
    ((34, 34), (8, 8)),  # the 29 x 29 Darcy grid padded by 5
    ((8, 9, 10), (2, 3, 4)),  # 3D
]


@pytest.mark.parametrize(("grid", "modes"), GRIDS_AND_MODES)
@pytest.mark.parametrize("batch", [1, 3])
def test_spectral_conv_matches_reference_in_float32(grid, modes, batch) -> None:
    torch.manual_seed(0)
    layer, reference = _random_spectral_pair(4, 3, modes, torch.float32)
    _assert_same_function(layer, reference, torch.randn(batch, 4, *grid), tolerance=1e-5)


@pytest.mark.parametrize(("grid", "modes"), GRIDS_AND_MODES)
def test_spectral_conv_matches_reference_in_float64(grid, modes) -> None:
    torch.manual_seed(1)
    layer, reference = _random_spectral_pair(3, 5, modes, torch.float64)
    _assert_same_function(layer, reference, torch.randn(2, 3, *grid, dtype=torch.float64), tolerance=1e-10)


def test_spectral_conv_keeps_its_parameter_layout() -> None:
    layer = SpectralConv(3, 5, (4, 6))
    shapes = [(name, tuple(parameter.shape)) for name, parameter in layer.named_parameters()]
    assert shapes == [("weight", (2, 3, 5, 4, 6, 2))]


def test_spectral_conv_ignores_autocast() -> None:
    # bf16 Fourier matrices or channel mixing would be off by ~1e-2; float32 inside matches to rounding.
    torch.manual_seed(2)
    layer, reference = _random_spectral_pair(4, 4, (5, 5), torch.float32)
    x = torch.randn(2, 4, 16, 15)
    expected = reference(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = layer(x)
        output_of_bf16_input = layer(x.bfloat16())
    assert output.dtype == torch.float32
    assert relative_difference(output, expected) < 1e-5
    assert output_of_bf16_input.dtype == torch.bfloat16
    assert relative_difference(output_of_bf16_input, reference(x.bfloat16().float())) < 1e-2


def test_spectral_conv_trains_after_running_under_inference_mode() -> None:
    # The Fourier matrices are cached; ones first built under inference mode must still work with autograd.
    layer = SpectralConv(2, 2, (3, 3))
    x = torch.randn(1, 2, 23, 17)
    with torch.inference_mode():
        expected = layer(x)
    output = layer(x)
    output.square().sum().backward()
    assert layer.weight.grad is not None
    assert torch.allclose(output, expected)


@pytest.mark.parametrize("grid", [(), (7,), (5, 6), (3, 4, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_linear_matches_reference(grid, bias) -> None:
    torch.manual_seed(3)
    layer = PointwiseLinear(4, 3, bias=bias)
    reference = ReferencePointwiseLinear(4, 3, bias=bias)
    reference.load_state_dict(layer.state_dict())
    _assert_same_function(layer, reference, torch.randn(2, 4, *grid), tolerance=1e-6)


def test_pointwise_linear_accepts_a_non_contiguous_input() -> None:
    layer = PointwiseLinear(4, 3)
    x = torch.randn(2, 6, 5, 4).movedim(-1, 1)  # channels with stride 1
    assert torch.allclose(layer(x), F.linear(x.movedim(1, -1), layer.weight, layer.bias).movedim(-1, 1))


@pytest.mark.parametrize(
    ("model_class", "kwargs", "grid"),
    [
        (FNO1d, {"width": 8, "modes": 5, "n_layers": 2, "projection_width": 16}, (40,)),
        (FNO2d, {"width": 6, "modes": 4, "n_layers": 2, "projection_width": 12, "padding": 3}, (13, 14)),
    ],
)
def test_fno_matches_the_reference_layers(model_class, kwargs, grid) -> None:
    torch.manual_seed(4)
    model = model_class(in_channels=2, out_channels=1, **kwargs)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, SpectralConv):
                module.weight.normal_(std=0.1)
    _assert_same_function(model, with_reference_layers(model), torch.randn(3, 2, *grid), tolerance=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize(("grid", "modes"), [((21,), (11,)), ((34, 34), (8, 8)), ((13, 11), (4, 5))])
def test_spectral_conv_matches_reference_on_cuda(grid, modes, dtype, tolerance) -> None:
    torch.manual_seed(5)
    layer, reference = _random_spectral_pair(4, 3, modes, dtype)
    x = torch.randn(2, 4, *grid, dtype=dtype, device="cuda")
    _assert_same_function(layer.cuda(), reference.cuda(), x, tolerance)
