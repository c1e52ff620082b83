"""Every preset of every registered operator architecture: shapes, gradients, fitting, other resolutions.

Parametrised over ``MODELS``, so an architecture registered for the "operator" task is covered as soon as it
is registered; input grids follow the entry's ``spatial_dims``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from sweeplab_modules.losses import relative_l2
from sweeplab_modules.registry import MODELS, build_model

OPERATOR_PRESETS = [
    (name, preset) for name in sorted(MODELS) if MODELS[name].task == "operator" for preset in MODELS[name].presets
]
PRESET_IDS = [f"{name}-{preset}" for name, preset in OPERATOR_PRESETS]

# Odd, non-square, not powers of two, and fine enough for the paper presets' spectral modes (FNO-2D keeps 12
# per dimension, FNO-1D 16).
GRIDS = {1: (40,), 2: (25, 30)}
# Fitting: small grids, and the same functions sampled more finely for the resolution check.
FIT_GRIDS = {1: (32,), 2: (24, 24)}
FINE_GRIDS = {1: (64,), 2: (47, 47)}
FIT_SAMPLES, FIT_MODES, FIT_MAX_STEPS, FIT_LR = 4, 2, 600, 5e-3
# Resolution-invariant models must cut their error on the finer grid by this factor too. Loose on purpose: MgNO's
# 3x3 stencils are tied to the grid spacing, so its weights carry over only in part (here 0.08 on the training
# grid, 0.39 on the finer one, from 0.79 untrained).
FINE_IMPROVEMENT = 0.7
# Presets above this many parameters are fitted with the sizes of the model's "small" preset (speed only;
# they still run forward and backward at their own size).
FIT_MAX_PARAMETERS = 200_000


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def n_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def smooth_fields(coefficients: Tensor, grid: tuple[int, ...]) -> Tensor:
    """``sum_k c_k prod_j sin(pi k_j x_j)`` on the grid ``x_j = 0 .. 1`` (ends included), ``(batch, 1, *grid)``.

    ``coefficients``: ``(batch, K, ..., K)``, one axis per grid dimension; the same coefficients sampled on two
    grids give the same functions at two resolutions.
    """
    field = coefficients
    for n in grid:
        # Contracting the leading frequency axis appends this grid axis at the end: grid axes stay in order.
        frequencies = math.pi * torch.arange(1, coefficients.shape[1] + 1, dtype=coefficients.dtype)
        field = torch.tensordot(field, torch.sin(frequencies[:, None] * torch.linspace(0, 1, n)), dims=([1], [0]))
    return field[:, None]


def nonlocal_map(a: Tensor) -> Tensor:
    """A smooth, nonlinear, non-local target: the running integral of ``a`` along every axis plus ``a^2 / 2``."""
    integral = a
    for dim in range(2, a.dim()):
        integral = torch.cumsum(integral, dim=dim) / a.shape[dim]
    return integral + 0.5 * a**2


def fitting_parameters(name: str, preset: str) -> dict[str, Any]:
    params = dict(MODELS[name].presets[preset])
    small = MODELS[name].presets.get("small")
    if small is not None and n_parameters(build_model(name, 1, 1, **params)) > FIT_MAX_PARAMETERS:
        params.update(small)
    return params


def gradient_problems(model: nn.Module, *, require_nonzero: bool) -> list[str]:
    problems = []
    for name, parameter in model.named_parameters():
        if parameter.grad is None:
            problems.append(f"{name}: no gradient")
        elif not torch.isfinite(parameter.grad).all():
            problems.append(f"{name}: non-finite gradient")
        elif require_nonzero and not parameter.grad.any():
            problems.append(f"{name}: zero gradient")
    return problems


@pytest.mark.parametrize(("name", "preset"), OPERATOR_PRESETS, ids=PRESET_IDS)
def test_preset_maps_grid_to_grid_and_trains_every_parameter(name: str, preset: str) -> None:
    torch.manual_seed(0)
    grid = GRIDS[MODELS[name].spatial_dims]
    model = build_model(name, in_channels=2, out_channels=3, **MODELS[name].presets[preset])
    x, target = torch.randn(2, 2, *grid), torch.randn(2, 3, *grid)
    output = model(x)
    assert output.shape == (2, 3, *grid)
    relative_l2(output, target).backward()
    problems = gradient_problems(model, require_nonzero=False)
    assert not problems, f"{len(problems)} parameters: {problems[:5]}"
    # Non-zero after one optimiser step: a gate initialised at zero (MultiONet's layer weights) blocks the
    # gradient of what it gates only at initialisation.
    torch.optim.Adam(model.parameters(), lr=1e-3).step()
    model.zero_grad()
    relative_l2(model(x), target).backward()
    problems = gradient_problems(model, require_nonzero=True)
    assert not problems, f"{len(problems)} parameters: {problems[:5]}"


def fit_until_tenfold(model: nn.Module, inputs: Tensor, targets: Tensor) -> tuple[float, float, int]:
    """Adam on the batch until the relative L2 error is a tenth of its initial value or FIT_MAX_STEPS are spent.

    Returns (initial, last, steps); each loss is the model's error before that step's update.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=FIT_LR)
    initial = loss_value = math.inf
    for step in range(FIT_MAX_STEPS):
        optimizer.zero_grad()
        loss = relative_l2(model(inputs), targets)
        loss_value = loss.item()
        initial = loss_value if step == 0 else initial
        if loss_value < initial / 10:
            return initial, loss_value, step
        loss.backward()
        optimizer.step()
    return initial, loss_value, FIT_MAX_STEPS


@pytest.mark.parametrize(("name", "preset"), OPERATOR_PRESETS, ids=PRESET_IDS)
def test_preset_overfits_one_batch(name: str, preset: str) -> None:
    torch.manual_seed(0)
    entry = MODELS[name]
    coefficients = torch.randn(FIT_SAMPLES, *[FIT_MODES] * entry.spatial_dims)
    inputs = smooth_fields(coefficients, FIT_GRIDS[entry.spatial_dims])
    model = build_model(name, in_channels=1, out_channels=1, **fitting_parameters(name, preset))
    fine_inputs = smooth_fields(coefficients, FINE_GRIDS[entry.spatial_dims])
    fine_error_before = fine_error(model, fine_inputs)
    model.train()
    initial, final, steps = fit_until_tenfold(model, inputs, nonlocal_map(inputs))
    assert final < initial / 10, f"relative L2 went from {initial:.3g} to {final:.3g} in {steps} steps"
    if entry.resolution_invariant:
        # The same functions on a finer grid: the trained weights must carry over, not merely run.
        fine_error_after = fine_error(model, fine_inputs)
        assert fine_error_after < FINE_IMPROVEMENT * fine_error_before, (
            f"relative L2 on {FINE_GRIDS[entry.spatial_dims]} went from {fine_error_before:.3g} to "
            f"{fine_error_after:.3g} (to {final:.3g} on the training grid {FIT_GRIDS[entry.spatial_dims]})"
        )


def fine_error(model: nn.Module, inputs: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        output = model(inputs)
    assert output.shape == inputs.shape and torch.isfinite(output).all()
    return relative_l2(output, nonlocal_map(inputs)).item()


# Architecture-specific checks


def test_the_resolution_check_covers_the_operators_built_for_it() -> None:
    # The fitting test checks another resolution only for entries flagged resolution_invariant.
    flagged = {name for name in MODELS if MODELS[name].resolution_invariant}
    assert {"fno1d", "fno2d", "mgno"} <= flagged


def test_mgno_circular_padding_makes_the_v_cycle_periodic() -> None:
    # On a periodic grid a shift by a multiple of the coarsest spacing (2 ** (levels - 1) points) commutes
    # with the whole network, prolongation included; with zero padding it does not.
    torch.manual_seed(0)
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    shift = (4, 8)
    for padding_mode, periodic in (("circular", True), ("zeros", False)):
        model = build_model("mgno", 1, 1, width=4, n_layers=2, levels=3, padding_mode=padding_mode).double()
        shifted_output = model(torch.roll(x, shift, dims=(-2, -1)))
        output_shifted = torch.roll(model(x), shift, dims=(-2, -1))
        assert torch.allclose(shifted_output, output_shifted, atol=1e-12) == periodic, padding_mode


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        # The authors' rough-Darcy command (width 24, 4 layers, 6 levels): "0.57 M" in the paper.
        ("mgno", {"width": 24, "n_layers": 4, "levels": 6}, 572_661),
        # What the authors' LSM code builds for Darcy (d_model 64, 12 basis, 4 tokens, 6x6 patches).
        ("lsm", MODELS["lsm"].presets["paper"], 19_187_457),
    ],
)
def test_parameter_count_matches_the_authors_configuration(name: str, params: dict, expected: int) -> None:
    assert n_parameters(build_model(name, 1, 1, **params)) == expected


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("mgno", {"smoothing_steps": [1, 1, 2], "levels": 6}),
        ("mgno", {"smoothing_steps": [0, 1], "levels": 2}),
        ("mgno", {"padding_mode": "mirror"}),
        ("mgno", {"levels": 0}),
        ("lsm", {"width": 12, "n_heads": 8}),
        ("lsm", {"patch_size": 0}),
        ("unet2d", {"normalization": "layer"}),
        ("unet2d", {"n_scales": 0}),
    ],
)
def test_invalid_arguments_are_clear_errors(name: str, params: dict) -> None:
    with pytest.raises(ValueError):
        build_model(name, 1, 1, **params)


@pytest.mark.parametrize("name", ["unet2d", "mgno", "lsm"])
def test_wrong_input_layout_is_an_error(name: str) -> None:
    model = build_model(name, 2, 1, **MODELS[name].presets["small"])
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(1, 3, 16, 16))
