import inspect
import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from sweeplab_modules.layers import SpectralConv, append_grid_coordinates
from sweeplab_modules.operators.fno import FNO1d, FNO2d
from sweeplab_modules.registry import constructor_parameters

SMALL_1D = {"width": 8, "modes": 4, "n_layers": 2, "projection_width": 16}
SMALL_2D = {"width": 6, "modes": 3, "n_layers": 2, "projection_width": 12, "padding": 2}


def relative_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return (
        torch.linalg.vector_norm(actual.double() - expected.double()) / torch.linalg.vector_norm(expected.double())
    ).item()


# Reference spectral convolution: DFT and inverse DFT written as explicit matrices over the retained
# frequencies, in float64, independent of torch.fft.


def _fourier_matrix(frequencies: torch.Tensor, n: int) -> torch.Tensor:
    """exp(-2 pi i k x / n) for the given frequencies k (rows) and grid points x (columns)."""
    points = torch.arange(n, dtype=torch.float64)
    return torch.exp(-2j * math.pi * frequencies.double()[:, None] * points[None, :] / n)


def _half_spectrum_multiplicity(frequencies: torch.Tensor, n: int) -> torch.Tensor:
    """A real signal's k > 0 (below Nyquist) half-spectrum entry stands for k and -k: it counts twice."""
    double = (frequencies > 0) & (2 * frequencies != n)
    return torch.where(double, 2.0, 1.0).double()


def reference_spectral_conv(x: torch.Tensor, layer: SpectralConv) -> torch.Tensor:
    x = x.to(torch.complex128)
    weight = torch.view_as_complex(layer.weight.detach().double())  # (blocks, in, out, *modes)
    if layer.spatial_dims == 1:
        (n,), (m,) = x.shape[2:], layer.modes
        k = torch.arange(m)
        analysis = _fourier_matrix(k, n)
        synthesis = analysis.conj() * _half_spectrum_multiplicity(k, n)[:, None] / n
        x_hat = torch.einsum("bix,kx->bik", x, analysis)
        y_hat = torch.einsum("bik,iok->bok", x_hat, weight[0])
        return torch.einsum("bok,kx->box", y_hat, synthesis).real
    (n1, n2), (m1, m2) = x.shape[2:], layer.modes
    k1 = torch.cat([torch.arange(m1), torch.arange(-m1, 0)])  # both signs along the fully transformed dim
    k2 = torch.arange(m2)
    analysis1, analysis2 = _fourier_matrix(k1, n1), _fourier_matrix(k2, n2)
    synthesis1 = analysis1.conj() / n1
    synthesis2 = analysis2.conj() * _half_spectrum_multiplicity(k2, n2)[:, None] / n2
    x_hat = torch.einsum("bixy,kx,ly->bikl", x, analysis1, analysis2)
    full_weight = torch.cat([weight[0], weight[1]], dim=2)  # rows ordered like k1
    y_hat = torch.einsum("bikl,iokl->bokl", x_hat, full_weight)
    return torch.einsum("bokl,kx,ly->boxy", y_hat, synthesis1, synthesis2).real


@pytest.mark.parametrize(
    ("grid", "modes"),
    [
        ((20,), (6,)),
        ((21,), (11,)),  # odd size, every frequency kept
        ((12, 11), (4, 5)),
        ((12, 10), (6, 6)),  # leading dim exactly 2 * modes, last dim up to Nyquist
    ],
)
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_spectral_conv_matches_explicit_dft(grid, modes, dtype, tolerance) -> None:
    torch.manual_seed(0)
    layer = SpectralConv(3, 2, modes)
    x = torch.randn(2, 3, *grid, dtype=dtype, requires_grad=True)
    cotangent = torch.randn(2, 2, *grid, dtype=torch.float64)
    x_reference = x.detach().double().requires_grad_()

    output = layer(x)
    expected = reference_spectral_conv(x_reference, layer)
    assert output.dtype == dtype
    assert relative_difference(output, expected) < tolerance

    (gradient,) = torch.autograd.grad((output.double() * cotangent).sum(), x)
    (expected_gradient,) = torch.autograd.grad((expected * cotangent).sum(), x_reference)
    assert relative_difference(gradient, expected_gradient) < tolerance


def _band_limited_field(coefficients: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """Sum over k of Re(c_k exp(2 pi i k . s)) sampled on the periodic grid s_j = index / n_j.

    ``coefficients``: (batch, channels, 2K + 1, ...), one frequency axis per grid dim, entry k + K for k.
    """
    batch_and_channels, spatial_dims = coefficients.shape[:2], len(grid)
    max_frequency = coefficients.shape[-1] // 2
    axes = [torch.arange(n, dtype=torch.float64) / n for n in grid]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (d, *grid)
    field = torch.zeros(*batch_and_channels, *grid, dtype=torch.float64)
    for index in itertools.product(range(2 * max_frequency + 1), repeat=spatial_dims):
        frequency = torch.tensor(index, dtype=torch.float64) - max_frequency
        phase = torch.exp(2j * math.pi * torch.tensordot(frequency, points, dims=1))
        coefficient = coefficients[(..., *index)].reshape(*batch_and_channels, *[1] * spatial_dims)
        field += (coefficient * phase).real
    return field.float()


@pytest.mark.parametrize(("coarse", "modes"), [((16,), (3,)), ((12, 14), (3, 3))])
def test_spectral_conv_is_resolution_consistent(coarse, modes) -> None:
    torch.manual_seed(1)
    layer = SpectralConv(2, 2, modes)
    # Frequencies |k| <= 4 exceed the retained modes (truncation acts) but stay below the coarse Nyquist.
    coefficients = torch.randn(1, 2, *[9] * len(coarse), dtype=torch.complex128)
    fine = tuple(2 * n for n in coarse)
    coarse_output = layer(_band_limited_field(coefficients, coarse))
    fine_output = layer(_band_limited_field(coefficients, fine))
    shared_points = fine_output[(..., *[slice(None, None, 2)] * len(coarse))]
    assert relative_difference(shared_points, coarse_output) < 1e-5


def test_spectral_conv_rejects_a_grid_coarser_than_its_modes() -> None:
    layer = SpectralConv(1, 1, (4, 4))
    with pytest.raises(ValueError, match="too coarse"):
        layer(torch.randn(1, 1, 7, 16))
    with pytest.raises(ValueError, match="too coarse"):
        layer(torch.randn(1, 1, 16, 5))


# The operator


@pytest.mark.parametrize("grid", [(32,), (50,)])
def test_fno1d_output_shape_at_any_resolution(grid) -> None:
    model = FNO1d(in_channels=2, out_channels=3, **SMALL_1D)
    assert model(torch.randn(4, 2, *grid)).shape == (4, 3, *grid)


@pytest.mark.parametrize("grid", [(16, 16), (23, 19)])
def test_fno2d_output_shape_at_any_resolution(grid) -> None:
    model = FNO2d(in_channels=1, out_channels=2, **SMALL_2D)
    assert model(torch.randn(3, 1, *grid)).shape == (3, 2, *grid)


# Gradients reaching every parameter and overfitting a batch: tests/test_operators.py, for every preset.


def test_parameter_count_of_the_paper_2d_configuration() -> None:
    width, modes, n_layers, projection, in_fields, out_channels, spatial_dims = 32, 12, 4, 128, 1, 1, 2
    lift = (in_fields + spatial_dims) * width + width
    # Per Fourier layer: 2 ** (d - 1) = 2 blocks of width x width x modes^2 complex numbers (2 reals each),
    # plus the 1x1 W with its bias.
    fourier_layer = 2 * width * width * modes**2 * 2 + (width * width + width)
    projection_mlp = (width * projection + projection) + (projection * out_channels + out_channels)
    expected = lift + n_layers * fourier_layer + projection_mlp
    assert expected == 2_368_001  # the count the reference code prints for its 2D Darcy model

    model = FNO2d(in_channels=1, out_channels=1, width=32, modes=12, n_layers=4, projection_width=128)
    assert sum(parameter.numel() for parameter in model.parameters()) == expected


def test_ffts_stay_float32_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    model = FNO2d(in_channels=1, out_channels=1, **SMALL_2D)
    x = torch.randn(2, 1, 16, 16)
    reference = model(x)

    # The spectral convolution computes its Fourier transforms as matrix products, which autocast would run
    # in bf16 (relative error ~1e-2): a float32 field through it under autocast must come out float32 and as
    # accurate as without autocast.
    spectral = model.fourier_layers[0].spectral
    field = torch.randn(2, spectral.in_channels, 16, 16)
    field_reference = spectral(field)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(x)
        field_output = spectral(field)
    assert field_output.dtype == torch.float32
    assert relative_difference(field_output, field_reference) < 1e-6
    assert torch.isfinite(output).all()
    assert relative_difference(output, reference) < 5e-2
    output.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"modes": 0},
        {"width": 0},
        {"n_layers": 0},
        {"projection_width": 0},
        {"padding": -1},
        {"activation": "tanh"},
    ],
)
def test_invalid_arguments_raise(kwargs) -> None:
    with pytest.raises(ValueError):
        FNO2d(in_channels=1, out_channels=1, **kwargs)


def test_wrong_input_layout_is_an_error() -> None:
    model = FNO2d(in_channels=2, out_channels=1, **SMALL_2D)
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(1, 2, 16))


@pytest.mark.parametrize("model_class", [FNO1d, FNO2d])
def test_constructor_read_from_source_matches_signature(model_class) -> None:
    from_source = constructor_parameters(f"sweeplab_modules.operators.fno:{model_class.__name__}")
    signature = inspect.signature(model_class.__init__).parameters
    assert list(from_source) == [name for name in signature if name != "self"]
    for name, parameter in from_source.items():
        if not parameter.required:
            assert parameter.default == signature[name].default


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_runs_bf16_autocast() -> None:
    torch.manual_seed(0)
    model = FNO2d(in_channels=1, out_channels=1, **SMALL_2D)
    x = torch.randn(2, 1, 20, 20)
    expected = model(x)
    model_cuda, x_cuda = model.cuda(), x.cuda()
    assert relative_difference(model_cuda(x_cuda).cpu(), expected) < 1e-4
    with torch.autocast("cuda", dtype=torch.bfloat16):
        output = model_cuda(x_cuda)
    assert torch.isfinite(output).all()
    assert relative_difference(output.float().cpu(), expected) < 5e-2
    output.float().square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model_cuda.parameters())


def test_padding_fraction_pads_nested_points_on_refined_grids() -> None:
    model = FNO2d(in_channels=1, out_channels=1, **{**SMALL_2D, "padding": 0, "padding_fraction": 0.25})
    padded = []
    model.fourier_layers[0].register_forward_hook(lambda module, inputs, output: padded.append(inputs[0].shape[2:]))
    for grid in [(17, 17), (33, 65)]:
        assert model(torch.randn(1, 1, *grid)).shape == (1, 1, *grid)  # cropped back
    assert [tuple(shape) for shape in padded] == [(21, 21), (41, 81)]  # a quarter of the n - 1 spacings
    # Refining 29 by r (n - 1 = 28 r) pads r times the points: the coarse padded points stay nodes of the fine grid
    # (rounding 6 / 29 * n instead, as before, gives 23 at 113 and 29 at 141).
    exact = FNO2d(in_channels=1, out_channels=1, **{**SMALL_2D, "padding": 0, "padding_fraction": 6 / 28})
    assert exact.domain_padding((29, 57, 113, 141)) == [6, 12, 24, 30]
    fixed = FNO2d(in_channels=1, out_channels=1, **{**SMALL_2D, "padding": 2, "padding_fraction": 0.0})
    assert fixed.domain_padding((17, 33)) == [2, 2]
    with pytest.raises(ValueError, match="padding_fraction"):
        FNO2d(in_channels=1, out_channels=1, padding_fraction=1.5)


def test_padding_one_side_is_padding_both_sides_of_the_same_total() -> None:
    # The Fourier layers commute with circular shifts and the rest is pointwise: where the zeros go within the
    # period does not matter, only how many (neuraloperator pads both sides, we pad the high end).
    torch.manual_seed(0)
    model = FNO2d(in_channels=1, out_channels=1, **{**SMALL_2D, "padding": 6}).double()
    x = torch.randn(2, 1, 21, 21, dtype=torch.float64)
    v = F.pad(model.lift(append_grid_coordinates(x, 2)), [3, 3, 3, 3])
    for layer in model.fourier_layers:
        v = layer(v)
    both_sides = model.projection(v[..., 3:-3, 3:-3])
    assert torch.allclose(model(x), both_sides, atol=1e-12)
