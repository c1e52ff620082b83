"""DeepONet and MultiONet: point queries, free output resolution, sensor sampling, and the inner-product maths.

Shapes, gradients and fitting of the registered presets are covered for every operator in test_operators.py.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch.nn import functional as F

from sweeplab_modules.layers.branch_trunk import periodic_features
from sweeplab_modules.layers.sensors import grid_points, sample_on_sensors
from sweeplab_modules.operators.deeponet import (
    DeepONet,
    DeepONet1d,
    DeepONet2d,
    MultiONet,
    MultiONet1d,
    MultiONet2d,
)

SMALL = {
    DeepONet1d: {
        "sensors": 16,
        "n_basis": 8,
        "branch_width": 12,
        "branch_layers": 3,
        "trunk_width": 12,
        "trunk_harmonics": 0,
    },
    DeepONet2d: {"sensors": 13, "n_basis": 8, "branch_width": 12, "trunk_width": 12, "encoder_channels": 4},
    MultiONet1d: {"sensors": 16, "width": 8, "n_layers": 4, "sum_layers": 3},
    MultiONet2d: {"sensors": 13, "width": 8, "n_layers": 4, "sum_layers": 2, "encoder_channels": 4},
}
CLASSES = list(SMALL)


def dims_of(cls: type) -> int:
    return 1 if cls in (DeepONet1d, MultiONet1d) else 2


def build(cls: type, in_channels: int = 2, out_channels: int = 3, **overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model = cls(in_channels, out_channels, **{**SMALL[cls], **overrides})
    if isinstance(model, (MultiONet1d, MultiONet2d)):
        # The published zero initialisation makes every output the bias: give the layer weights values.
        with torch.no_grad():
            model.layer_weights.normal_()
    return model.double()


def smooth_field(grid: tuple[int, ...], channels: int, *, periodic: bool) -> torch.Tensor:
    """Two samples of a smooth function of the coordinates, on ``grid`` in the given convention."""
    points = grid_points(grid, periodic=periodic, dtype=torch.float64)  # (n, d)
    phase = 2 * math.pi * points.sum(dim=1)
    field = torch.stack([torch.sin(phase + c) + 0.3 * torch.cos(2 * phase * (c + 1)) for c in range(channels)])
    return torch.stack([field, 2 * field**2]).view(2, channels, *grid)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("periodic", [False, True])
def test_point_queries_at_grid_points_equal_the_grid_output(cls: type, periodic: bool) -> None:
    model = build(cls, periodic=periodic)
    grid = (13,) * dims_of(cls)
    x = torch.randn(2, 2, *grid, dtype=torch.float64)
    on_grid = model(x).reshape(2, 3, -1)
    points = grid_points(grid, periodic=periodic, dtype=torch.float64)
    torch.testing.assert_close(model.query(x, points[None]), on_grid)
    # Per-sample points, in another order, give the same values at the same points.
    order = torch.randperm(points.shape[0])
    per_sample = model.query(x, points[order].expand(2, -1, -1))
    torch.testing.assert_close(per_sample, on_grid[:, :, order])


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("periodic", [False, True])
def test_output_resolution_is_free(cls: type, periodic: bool) -> None:
    model = build(cls, periodic=periodic)
    sensors = SMALL[cls]["sensors"]
    # A coarse grid equal to the sensor grid and a grid twice as fine: the fine grid holds every coarse point,
    # so both sample the same sensor values and must agree wherever their points coincide.
    coarse_n = sensors
    fine_n = 2 * sensors if periodic else 2 * sensors - 1
    dims = dims_of(cls)
    coarse = smooth_field((coarse_n,) * dims, 2, periodic=periodic)
    fine = smooth_field((fine_n,) * dims, 2, periodic=periodic)
    torch.testing.assert_close(fine[(..., *[slice(None, None, 2)] * dims)], coarse)
    coarse_output, fine_output = model(coarse), model(fine)
    assert fine_output.shape == (2, 3, *(fine_n,) * dims)
    torch.testing.assert_close(fine_output[(..., *[slice(None, None, 2)] * dims)], coarse_output)
    # Off-grid points: the query does not depend on the resolution the input came at.
    points = torch.rand(1, 7, dims, dtype=torch.float64)
    torch.testing.assert_close(model.query(fine, points), model.query(coarse, points))


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("grid", [(11,), (11, 8)])
def test_sampling_at_the_sensor_resolution_is_the_identity(periodic: bool, grid: tuple[int, ...]) -> None:
    x = torch.randn(3, 2, *grid, dtype=torch.float64)
    torch.testing.assert_close(sample_on_sensors(x, grid, periodic=periodic), x, rtol=0, atol=1e-14)


@pytest.mark.parametrize("periodic", [False, True])
def test_sampling_a_refined_grid_picks_the_sensor_points(periodic: bool) -> None:
    fine = (24, 16) if periodic else (25, 17)
    sensors = (12, 8) if periodic else (13, 9)
    x = torch.randn(2, 1, *fine, dtype=torch.float64)
    torch.testing.assert_close(sample_on_sensors(x, sensors, periodic=periodic), x[..., ::2, ::2])


def test_sampling_interpolates_linearly_and_wraps_periodic_grids() -> None:
    # A linear function on a closed grid is interpolated exactly at sensors between the grid points.
    closed = 2.0 * torch.linspace(0, 1, 10, dtype=torch.float64) + 1.0
    sensors = grid_points((7,), periodic=False, dtype=torch.float64)[:, 0]
    torch.testing.assert_close(sample_on_sensors(closed.view(1, 1, -1), (7,), periodic=False)[0, 0], 2 * sensors + 1)
    # Periodic grid x_j = j / 4: the sensor at 7/8 lies between the last point and the first one again.
    periodic = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 1.5], dtype=torch.float64)
    torch.testing.assert_close(sample_on_sensors(periodic, (8,), periodic=True)[0, 0], expected)


def test_grid_points_follow_the_field_layout() -> None:
    points = grid_points((3, 4), periodic=True, dtype=torch.float64)
    assert points.shape == (12, 2)
    # Flat index 6 is row 1, column 2 of a (3, 4) field.
    torch.testing.assert_close(points[6], torch.tensor([1 / 3, 2 / 4], dtype=torch.float64))
    torch.testing.assert_close(grid_points((5,), periodic=False)[:, 0], torch.linspace(0, 1, 5))


@pytest.mark.parametrize("harmonics", [0, 3])
def test_deeponet_is_the_inner_product_of_branch_and_trunk(harmonics: int) -> None:
    model = build(DeepONet1d, in_channels=2, out_channels=2, periodic=True, trunk_harmonics=harmonics)
    with torch.no_grad():
        model.bias.copy_(torch.tensor([0.5, -1.0]))
    x = torch.randn(3, 2, 16, dtype=torch.float64)  # 16 points = the sensors: no interpolation
    points = torch.rand(1, 5, 1, dtype=torch.float64)
    coefficients = model.branch(x.flatten(start_dim=1)).view(3, 2, 8)  # (sample, channel, basis)
    trunk_input = periodic_features(points[0], harmonics) if harmonics else points[0]
    basis = model.trunk(trunk_input)  # (point, basis)
    expected = torch.zeros(3, 2, 5, dtype=torch.float64)
    for sample in range(3):
        for channel in range(2):
            expected[sample, channel] = basis @ coefficients[sample, channel] + model.bias[channel]
    torch.testing.assert_close(model.query(x, points), expected)


def test_periodic_trunk_features_make_the_output_periodic() -> None:
    model = build(DeepONet1d, periodic=True, trunk_harmonics=2)
    features = periodic_features(torch.tensor([[0.25]]), 2)
    torch.testing.assert_close(features, torch.tensor([[0.0, -1.0, 1.0, 0.0]]), atol=1e-7, rtol=0)
    x = torch.randn(2, 2, 20, dtype=torch.float64)
    points = torch.rand(1, 6, 1, dtype=torch.float64)
    torch.testing.assert_close(model.query(x, points + 1.0), model.query(x, points))


@pytest.mark.parametrize(("n_layers", "sum_layers"), [(4, 3), (3, 1)])
@pytest.mark.parametrize("out_channels", [1, 2])
def test_multionet_averages_weighted_inner_products_of_the_last_layers(
    n_layers: int, sum_layers: int, out_channels: int
) -> None:
    width = 8
    model = build(MultiONet1d, 1, out_channels, n_layers=n_layers, sum_layers=sum_layers, trunk_activation="tanh_sin")
    with torch.no_grad():
        model.bias.normal_()
    x = torch.randn(2, 1, 16, dtype=torch.float64)
    points = torch.rand(2, 5, 1, dtype=torch.float64)

    def tanh_sin(v: torch.Tensor) -> torch.Tensor:  # the trunk's activation, written out
        return torch.tanh(torch.sin(math.pi * (v + 1))) + v

    branch, trunk = x.flatten(start_dim=1), points
    expected = torch.zeros(2, out_channels, 5, dtype=torch.float64)
    for layer in range(n_layers):
        b_layer, t_layer = model.branch_layers[layer], model.trunk_layers[layer]
        branch = F.silu(F.linear(branch, b_layer.weight, b_layer.bias))
        trunk = tanh_sin(F.linear(trunk, t_layer.weight, t_layer.bias))
        summed_index = layer - (n_layers - sum_layers)
        if summed_index < 0:
            continue  # the first layers feed the next ones only
        for sample in range(2):
            for channel in range(out_channels):
                group = branch[sample, channel * width : (channel + 1) * width]
                product = trunk[sample] @ group  # (points,)
                expected[sample, channel] += model.layer_weights[summed_index, channel] * product / sum_layers
    expected += model.bias[None, :, None]
    torch.testing.assert_close(model.query(x, points), expected)


def test_multionet_starts_at_its_bias_and_reduces_to_one_inner_product() -> None:
    # Published initialisation: every layer weight is 0, so the network starts as the constant bias.
    model = MultiONet1d(1, 1, **SMALL[MultiONet1d]).double()
    x = torch.randn(2, 1, 16, dtype=torch.float64)
    torch.testing.assert_close(model(x), torch.zeros(2, 1, 16, dtype=torch.float64))
    # Only the last layer weighted: the DeepONet form <b_L(a), t_L(y)> with activated last layers.
    with torch.no_grad():
        model.layer_weights.copy_(torch.tensor([[0.0], [0.0], [float(model.sum_layers)]]))
    points = torch.rand(1, 4, 1, dtype=torch.float64)
    branch, trunk = x.flatten(start_dim=1), points[0]
    for b_layer, b_act, t_layer, t_act in zip(
        model.branch_layers, model.branch_activations, model.trunk_layers, model.trunk_activations, strict=True
    ):
        branch, trunk = b_act(b_layer(branch)), t_act(t_layer(trunk))
    torch.testing.assert_close(model.query(x, points)[:, 0], branch @ trunk.T)


def test_paper_configurations_have_the_published_parameter_counts() -> None:
    def count(model: torch.nn.Module) -> int:
        return sum(parameter.numel() for parameter in model.parameters())

    # MultiONet: the DGenNO authors' printed counts (Burgers; piecewise Darcy: encoder 2,461,440 + 106,805).
    assert count(MultiONet1d(1, 1)) == 148_869
    assert count(MultiONet2d(1, 1)) == 2_461_440 + 106_805
    # DeepONet, Darcy: the count the MultiONet authors print for the same network as their baseline.
    assert count(DeepONet2d(1, 1)) == 682_753
    # DeepONet, Burgers: branch 128 -> 128 x 3 -> 128, trunk 4 periodic features -> 128 x 2 -> 128, bias.
    assert count(DeepONet1d(1, 1)) == 4 * (128 * 128 + 128) + (4 * 128 + 128) + 2 * (128 * 128 + 128) + 1


@pytest.mark.parametrize("variant", CLASSES)
def test_a_variant_is_its_generic_class_at_a_fixed_dimension(variant: type) -> None:
    generic = DeepONet if issubclass(variant, DeepONet) else MultiONet
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(variant).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    torch.manual_seed(0)
    expected = variant(2, 3).state_dict()
    torch.manual_seed(0)
    built = generic(2, 3, spatial_dims=dims_of(variant), **defaults).state_dict()
    assert list(built) == list(expected)  # the same checkpoint keys
    assert all(torch.equal(built[key], expected[key]) for key in expected)


def test_the_1d_variants_default_to_the_periodic_grid_of_burgers() -> None:
    # Both published 1D settings are Burgers on x_j = j / n (periodic): MultiONet1d once defaulted to a closed grid.
    assert DeepONet1d(1, 1).periodic and MultiONet1d(1, 1).periodic
    assert not DeepONet2d(1, 1).periodic and not MultiONet2d(1, 1).periodic


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (MultiONet1d, {"sum_layers": 5, "n_layers": 5}, "sum_layers"),
        (DeepONet1d, {"periodic": False, "trunk_harmonics": 2}, "periodic"),
        (DeepONet2d, {"sensors": 12, "encoder_layers": 3}, "sensors"),
        (MultiONet2d, {"trunk_activation": "softmax"}, "trunk_activation"),
        (DeepONet1d, {"sensors": 1}, "sensors"),
        (MultiONet1d, {"periodic": "yes"}, "periodic"),
    ],
)
def test_invalid_arguments_raise(cls: type, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(1, 1, **kwargs)


def test_wrong_inputs_and_points_are_errors() -> None:
    model = build(MultiONet2d, in_channels=1, out_channels=1)
    x = torch.randn(2, 1, 10, 10, dtype=torch.float64)
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(2, 2, 10, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match="expected points"):
        model.query(x, torch.rand(1, 5, 1, dtype=torch.float64))  # one coordinate for a 2D operator
    with pytest.raises(ValueError, match="expected points"):
        model.query(x, torch.rand(3, 5, 2, dtype=torch.float64))  # 3 point sets for 2 samples
