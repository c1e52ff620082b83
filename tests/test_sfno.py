"""SFNO and the Spectral-Refiner: the spectral convolution's resampling and bias against torch.fft, the output
layer's enlargement, and the refiner's loss on the generator's own Navier-Stokes solution."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from sweeplab.datagen.navier_stokes import random_initial_vorticity, solve_navier_stokes
from sweeplab_modules.layers import SpectralConv
from sweeplab_modules.losses import spectral_upsample, vorticity_residual
from sweeplab_modules.operators.sfno import SFNO

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def explicit_spectral_conv(conv: SpectralConv, x: torch.Tensor, output_grid: tuple[int, ...]) -> torch.Tensor:
    """``irfftn(R * rfftn(x) + bias_scale * b)`` onto ``output_grid``, scaled to resample: the definition."""
    weight = torch.view_as_complex(conv.weight)
    bias = torch.view_as_complex(conv.bias) if conv.bias is not None else None
    dims = tuple(range(-conv.spatial_dims, 0))
    spectrum = torch.fft.rfftn(x, dim=dims)
    kept = torch.zeros(x.shape[0], conv.out_channels, *output_grid[:-1], output_grid[-1] // 2 + 1, dtype=spectrum.dtype)
    sides = [(slice(0, m), slice(-m, None)) for m in conv.modes[:-1]]
    for block, leading in enumerate(itertools.product(*sides)):
        index = (..., *leading, slice(0, conv.modes[-1]))
        mixed = torch.einsum("bi...,io...->bo...", spectrum[index], weight[block])
        kept[index] = mixed + (conv.bias_scale * bias[block] if bias is not None else 0)
    scale = math.prod(output_grid) / math.prod(x.shape[2:])
    return torch.fft.irfftn(kept, s=output_grid, dim=dims) * scale


@pytest.mark.parametrize("output_grid", [(8, 9, 6), (8, 9, 11), (8, 9, 4)], ids=["same", "longer", "shorter"])
def test_spectral_conv_resamples_and_adds_its_bias_as_the_fft_definition(output_grid) -> None:
    torch.manual_seed(0)
    conv = SpectralConv(2, 3, (3, 2, 2), bias_scale=0.5).double()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(4, 2, 8, 9, 6, dtype=torch.float64)
    output = conv(x, output_grid=output_grid)
    assert output.shape == (4, 3, *output_grid)
    torch.testing.assert_close(output, explicit_spectral_conv(conv, x, output_grid), rtol=1e-10, atol=1e-12)


def test_resampling_in_time_interpolates_a_band_limited_signal() -> None:
    # One channel, identity weights on the kept modes, no bias: the convolution is band-limited interpolation.
    conv = SpectralConv(1, 1, (4,)).double()
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[..., 0] = 1.0
    signal = lambda t: 1.0 + torch.cos(2 * torch.pi * t) - 0.5 * torch.sin(4 * torch.pi * t)  # noqa: E731
    coarse, fine = torch.arange(8, dtype=torch.float64) / 8, torch.arange(20, dtype=torch.float64) / 20
    resampled = conv(signal(coarse)[None, None], output_grid=(20,))
    torch.testing.assert_close(resampled[0, 0], signal(fine), rtol=0, atol=1e-12)


def test_spectral_conv_refuses_an_output_grid_too_coarse_for_its_modes() -> None:
    conv = SpectralConv(1, 1, (3, 3))
    with pytest.raises(ValueError, match="output grid"):
        conv(torch.randn(1, 1, 8, 8), output_grid=(4, 8))


def test_sfno_maps_any_window_lengths_and_resolutions() -> None:
    torch.manual_seed(0)
    for in_steps, out_steps, size in [(1, 1, 12), (3, 7, 16), (10, 40, 13)]:
        model = SFNO(in_steps, out_steps, width=4, modes=4, modes_t=3, latent_steps=5, channel_expansion=8)
        assert model(torch.randn(2, in_steps, size, size + 2)).shape == (2, out_steps, size, size + 2)


def test_without_its_output_layer_sfno_repeats_the_last_input_snapshot() -> None:
    # The residual in time: whatever the hidden layers compute, a zero output layer leaves the last snapshot.
    model = SFNO(4, 3, width=4, modes=3, modes_t=2, latent_steps=4, channel_expansion=8)
    with torch.no_grad():
        model.output_conv.weight.zero_()
    x = torch.randn(2, 4, 10, 10)
    torch.testing.assert_close(model(x), x[:, -1:].expand(-1, 3, -1, -1))


def test_spectral_upsampling_interpolates_a_trigonometric_polynomial() -> None:
    def field(n: int) -> torch.Tensor:
        x = torch.arange(n, dtype=torch.float64) / n
        return torch.sin(2 * math.pi * (3 * x[:, None] - 2 * x[None, :])) + torch.cos(2 * math.pi * 5 * x)[None, :]

    torch.testing.assert_close(spectral_upsample(field(13), 40), field(40), rtol=0, atol=1e-12)
    torch.testing.assert_close(spectral_upsample(field(12), 24), field(24), rtol=0, atol=1e-12)


def kolmogorov_trajectory(nu: float, amplitude: float, times: torch.Tensor, n: int = 16) -> torch.Tensor:
    """An exact solution with the generator's forcing: the steady state ``f / (8 pi^2 nu)`` plus decaying modes
    of ``|k|^2 = 2``, whose stream function is proportional to the vorticity, so that their advection vanishes."""
    x = torch.arange(n, dtype=torch.float64) / n
    plus, minus = 2 * math.pi * (x[:, None] + x[None, :]), 2 * math.pi * (x[:, None] - x[None, :])
    steady = amplitude * (torch.sin(plus) + torch.cos(plus)) / (8 * math.pi**2 * nu)
    decay = torch.exp(-8 * math.pi**2 * nu * times)[:, None, None]
    return (steady + decay * (0.7 * torch.sin(minus) + 0.3 * torch.cos(plus)))[None]


def test_the_residual_vanishes_on_an_exact_solution_and_not_for_another_viscosity() -> None:
    times = 0.01 * torch.arange(1, 11, dtype=torch.float64)
    w = kolmogorov_trajectory(1e-2, 0.1, times)
    exact = vorticity_residual(w, nu=1e-2, forcing_amplitude=0.1, time_step=0.01)
    wrong = vorticity_residual(w, nu=2e-2, forcing_amplitude=0.1, time_step=0.01)
    assert exact < 1e-6 and wrong > 1e-2, (exact, wrong)


def test_the_residual_of_the_generators_solution_is_its_solver_error() -> None:
    # Solved on the grid the loss sees (no subsampling), snapshots 0.01 apart: what is left is the solver's
    # and the time differences' truncation error, thousands of times below a 1% perturbation's residual.
    initial = random_initial_vorticity(np.random.default_rng(0), 64)[None]
    solution = solve_navier_stokes(
        initial, nu=1e-3, dt=1e-3, steps_per_snapshot=10, snapshots=10, forcing_amplitude=0.1, device="cpu"
    )
    w = torch.from_numpy(solution)
    noise = 0.01 * w.std() * torch.randn(w.shape, generator=torch.Generator().manual_seed(0), dtype=w.dtype)
    solved = vorticity_residual(w, nu=1e-3, forcing_amplitude=0.1, time_step=0.01)
    perturbed = vorticity_residual(w + noise, nu=1e-3, forcing_amplitude=0.1, time_step=0.01)
    assert solved < 1e-5 and perturbed > 1000 * solved, (solved, perturbed)


def test_the_residual_needs_a_trajectory_of_square_snapshots() -> None:
    with pytest.raises(ValueError, match="snapshots >= 2"):
        vorticity_residual(torch.zeros(1, 1, 8, 8), nu=1e-3, forcing_amplitude=0.1, time_step=0.1)
    with pytest.raises(ValueError, match="snapshots >= 2"):
        vorticity_residual(torch.zeros(1, 4, 8, 6), nu=1e-3, forcing_amplitude=0.1, time_step=0.1)


def test_the_checker_refuses_spatial_modes_the_grid_cannot_hold() -> None:
    from sweeplab.spec import StudyError, parse_study

    study = """\
name: sfno-modes
objective: {metric: val_rel_l2}
data:
  name: navier_stokes
  params: {fine_resolution: 32, resolution: 16, final_time: 2.0, record_every: 0.5, input_steps: 2, dt: 0.01}
models:
  - name: sfno
    params: {modes: 8, output_modes: 9}
budget: {n_trials: 1}
"""
    with pytest.raises(StudyError) as raised:
        parse_study(study, "sfno.yaml")
    (issue,) = raised.value.issues
    assert issue.location == ("models", 0, "params", "output_modes") and issue.line == 8
    assert "9 Fourier modes do not fit the grid (16, 16): at most 8 modes fit" in issue.message
    parse_study(study.replace("output_modes: 9", "output_modes: 8"))  # the largest that fits
