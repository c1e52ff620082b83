"""Navier-Stokes data: the solver against exact solutions (Taylor-Green decay, a steady forced state, the advection
term), its order in time, a bound on the forced flow, the initial field's statistics, and the data set's layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from sweeplab.data import DATASETS, load_dataset
from sweeplab.datagen._batched import sample_rng
from sweeplab.datagen.navier_stokes import (
    NavierStokesParams,
    generate_navier_stokes,
    random_initial_vorticity,
    solve_navier_stokes,
)

SMALL = {
    "n_train": 3,
    "n_val": 1,
    "n_test": 2,
    "fine_resolution": 32,
    "resolution": 16,
    "final_time": 1.0,
    "record_every": 0.25,
    "input_steps": 1,
    "dt": 0.01,
    "device": "cpu",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    points = np.arange(size) / size
    return np.meshgrid(points, points, indexing="ij")


def test_taylor_green_vortex_decays_exactly() -> None:
    x, y = grid(32)
    w0 = 2.0 * (2.0 * math.pi) * np.cos(2.0 * math.pi * x) * np.cos(2.0 * math.pi * y)
    nu = 1e-2
    records = solve_navier_stokes(w0[None], nu=nu, dt=1e-3, steps_per_snapshot=250, snapshots=4, forcing_amplitude=0.0)
    for snapshot, time in enumerate((0.25, 0.5, 0.75, 1.0)):
        exact = w0 * math.exp(-8.0 * math.pi**2 * nu * time)
        error = np.max(np.abs(records[0, snapshot] - exact)) / np.max(np.abs(exact))
        assert error < 1e-6  # measured 4e-8 at t = 1: Crank-Nicolson's error, no nonlinear one


def test_the_forcing_balanced_by_viscosity_is_a_steady_state() -> None:
    # f is a single Fourier shell (|k|^2 = 2), so w = f / (8 pi^2 nu) has no advection and nu Laplace w = -f.
    x, y = grid(32)
    nu, amplitude = 1e-3, 0.1
    phase = 2.0 * math.pi * (x + y)
    steady = amplitude * (np.sin(phase) + np.cos(phase)) / (8.0 * math.pi**2 * nu)
    records = solve_navier_stokes(
        steady[None], nu=nu, dt=1e-2, steps_per_snapshot=100, snapshots=1, forcing_amplitude=amplitude
    )
    np.testing.assert_allclose(records[0, 0], steady, rtol=0, atol=1e-12 * np.max(np.abs(steady)))


def test_advection_term_matches_the_analytic_one() -> None:
    # w = cos(2 pi x) + cos(4 pi y): psi = cos(2 pi x) / (4 pi^2) + cos(4 pi y) / (16 pi^2), u = psi_y, v = -psi_x,
    # so u . grad w = -1.5 sin(2 pi x) sin(4 pi y). With nu = 0 and f = 0 the first (Euler) step is w - dt u.grad w.
    x, y = grid(32)
    w0 = np.cos(2.0 * math.pi * x) + np.cos(4.0 * math.pi * y)
    dt = 1e-3
    (w1,) = solve_navier_stokes(w0[None], nu=0.0, dt=dt, steps_per_snapshot=1, snapshots=1, forcing_amplitude=0.0)
    advection = (w0 - w1[0]) / dt
    expected = -1.5 * np.sin(2.0 * math.pi * x) * np.sin(4.0 * math.pi * y)
    np.testing.assert_allclose(advection, expected, rtol=0, atol=1e-10)


def test_time_error_falls_at_second_order() -> None:
    w0 = np.stack([random_initial_vorticity(sample_rng(0, index), 32) for index in range(2)])
    final_time, nu = 0.5, 1e-3

    def solve(steps: int) -> np.ndarray:
        return solve_navier_stokes(w0, nu=nu, dt=final_time / steps, steps_per_snapshot=steps, snapshots=1)

    reference = solve(800)
    errors = [np.max(np.abs(solve(steps) - reference)) for steps in (25, 50, 100)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 1.8) & (orders < 2.3)), (errors, orders)


def test_forced_flow_stays_bounded_with_zero_mean() -> None:
    # Advection conserves enstrophy and -Laplace >= 4 pi^2 on zero-mean fields, so the L2 norm of w never exceeds
    # max(|w0|, |f| / (4 pi^2 nu)), with |f| = 0.1 here.
    w0 = np.stack([random_initial_vorticity(sample_rng(1, index), 32) for index in range(2)])
    nu = 1e-3
    records = solve_navier_stokes(w0, nu=nu, dt=1e-2, steps_per_snapshot=100, snapshots=10)
    assert np.all(np.isfinite(records))
    norms = np.sqrt(np.mean(records**2, axis=(2, 3)))
    bound = np.maximum(np.sqrt(np.mean(w0**2, axis=(1, 2))), 0.1 / (4.0 * math.pi**2 * nu))
    assert np.all(norms <= 1.01 * bound[:, None])
    np.testing.assert_allclose(records.mean(axis=(2, 3)), 0.0, atol=1e-12)
    assert np.all(np.abs(records[:, -1] - records[:, 0]).max(axis=(1, 2)) > 0.01)  # the flow does evolve


def test_initial_vorticity_has_zero_mean_the_recipe_variance_and_only_resolved_modes() -> None:
    size, alpha, tau, count = 32, 2.5, 7.0, 300
    rng = np.random.default_rng(0)
    fields = np.stack([random_initial_vorticity(rng, size, alpha, tau) for _ in range(count)])
    np.testing.assert_allclose(fields.mean(axis=(1, 2)), 0.0, atol=1e-14)
    spectra = np.abs(np.fft.fft2(fields))
    k = np.fft.fftfreq(size, d=1.0 / size)
    dropped = (np.abs(k[:, None]) > 10) | (np.abs(k[None, :]) > 10)  # 3k < 32 keeps |k| <= 10
    assert np.all(spectra[:, dropped] < 1e-10)
    # Re(sum_k s_k xi_k e^{2 pi i k.x}) with xi_k complex standard normal: variance sum_k s_k^2 over kept k != 0.
    squared_norm = k[:, None] ** 2 + k[None, :] ** 2
    variances = 2.0 * tau ** (2 * alpha - 2) * (4.0 * math.pi**2 * squared_norm + tau**2) ** (-alpha)
    expected_variance = np.sum(np.where(dropped | (squared_norm == 0), 0.0, variances))
    assert np.mean(fields**2) == pytest.approx(expected_variance, rel=0.05)


def test_generated_arrays_have_the_documented_layout() -> None:
    data = generate_navier_stokes(NavierStokesParams(**SMALL))
    assert set(data) == {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}
    for split, count in (("train", 3), ("val", 1), ("test", 2)):
        assert data[f"x_{split}"].shape == (count, 1, 16, 16)
        assert data[f"y_{split}"].shape == (count, 3, 16, 16)
        for side in ("x", "y"):
            assert data[f"{side}_{split}"].dtype == np.float32
            assert np.all(np.isfinite(data[f"{side}_{split}"]))


def test_inputs_and_outputs_are_consecutive_snapshots_of_each_sample() -> None:
    params = NavierStokesParams(**SMALL)
    data = generate_navier_stokes(params)
    snapshots = np.concatenate(
        [np.concatenate([data[f"x_{split}"], data[f"y_{split}"]], axis=1) for split in ("train", "val", "test")]
    )
    for index in (0, 3, 5):  # first train, first val, last test
        w0 = random_initial_vorticity(sample_rng(params.seed, index), 32)
        records = solve_navier_stokes(w0[None], nu=params.nu, dt=params.dt, steps_per_snapshot=25, snapshots=4)
        np.testing.assert_array_equal(snapshots[index], records[0, :, ::2, ::2].astype(np.float32))
    more_inputs = generate_navier_stokes(NavierStokesParams(**{**SMALL, "input_steps": 3}))
    np.testing.assert_array_equal(more_inputs["x_train"][:, :1], data["x_train"])
    np.testing.assert_array_equal(more_inputs["x_train"][:, 1:], data["y_train"][:, :2])


def test_generation_is_deterministic_by_seed_and_independent_of_the_batch_size() -> None:
    first = generate_navier_stokes(NavierStokesParams(**SMALL, seed=3, batch_size=6))
    again = generate_navier_stokes(NavierStokesParams(**SMALL, seed=3, batch_size=1))
    other = generate_navier_stokes(NavierStokesParams(**SMALL, seed=4))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])  # bitwise on CPU; on a GPU, to rounding
        assert not np.array_equal(first[key], other[key])


def test_coarse_output_is_the_fine_solution_at_the_subsampled_points() -> None:
    fine = generate_navier_stokes(NavierStokesParams(**SMALL))
    coarse = generate_navier_stokes(NavierStokesParams(**{**SMALL, "resolution": 4}))
    for key in fine:
        np.testing.assert_array_equal(coarse[key], fine[key][..., ::4, ::4])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_gpu_gives_the_cpu_data_to_rounding() -> None:
    on_cpu = generate_navier_stokes(NavierStokesParams(**SMALL))
    on_gpu = generate_navier_stokes(NavierStokesParams(**{**SMALL, "device": "cuda"}))
    for key in on_cpu:
        np.testing.assert_allclose(on_gpu[key], on_cpu[key], rtol=1e-6, atol=1e-6 * np.abs(on_cpu[key]).max())


def test_the_cache_accepts_the_default_channel_layout(tmp_path: Path) -> None:
    # 50 snapshots, 10 in and 40 out, as in the registry entry; on a tiny grid with a few steps per snapshot.
    params = {**SMALL, "fine_resolution": 16, "resolution": 8, "final_time": 0.5, "record_every": 0.01}
    params["input_steps"] = 10
    data = load_dataset("navier_stokes", params, data_dir=tmp_path)
    assert data.x_train.shape == (3, 10, 8, 8) and data.y_test.shape == (2, 40, 8, 8)


def test_params_have_descriptions_the_recipe_defaults_and_the_registry_channels() -> None:
    params = NavierStokesParams()
    assert (params.n_train, params.n_val, params.n_test) == (1000, 100, 100)
    assert (params.fine_resolution, params.resolution, params.subsampling_step) == (256, 64, 4)
    assert (params.nu, params.final_time, params.record_every, params.dt) == (1e-3, 50.0, 1.0, 1e-4)
    assert (params.steps_per_snapshot, params.snapshots, params.alpha, params.tau) == (10_000, 50, 2.5, 7.0)
    entry = DATASETS["navier_stokes"]
    assert (params.in_channels, params.out_channels) == (entry.in_channels, entry.out_channels) == (10, 40)
    assert all(field.description for field in NavierStokesParams.model_fields.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"n_tran": 10},
        {"n_val": 0},
        {"resolution": 60},
        {"nu": 0.0},
        {"dt": 3e-4},
        {"record_every": 0.7},
        {"input_steps": 50},
        {"alpha": 1.0},
        {"batch_size": 0},
        {"device": "gpu"},
    ],
)
def test_params_reject_bad_values(bad: dict) -> None:
    with pytest.raises(ValidationError):
        NavierStokesParams(**bad)


def test_regimes_of_the_paper_are_accepted() -> None:
    for nu, final_time in ((1e-3, 50.0), (1e-4, 30.0), (1e-5, 20.0)):
        params = NavierStokesParams(nu=nu, final_time=final_time)
        assert (params.in_channels, params.out_channels) == (10, final_time - 10)
