"""Burgers data: the solver against the Cole-Hopf solution (error, order 4), conservation, the initial field's
statistics, and the data set's layout, determinism and subsampling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from sweeplab.data import load_dataset
from sweeplab.datagen._batched import sample_rng
from sweeplab.datagen.burgers import BurgersParams, generate_burgers, random_initial_condition, solve_burgers

SMALL = {"n_train": 3, "n_val": 1, "n_test": 2, "fine_resolution": 256, "resolution": 64, "dt": 0.05}


def cole_hopf(x: np.ndarray, t: float, nu: float, constant: float, amplitudes: dict[int, float]) -> np.ndarray:
    """u = -2 nu phi_x / phi with phi = constant + sum_m b_m exp(-4 pi^2 m^2 nu t) cos(2 pi m x).

    phi solves the heat equation phi_t = nu phi_xx, hence u solves u_t + u u_x = nu u_xx (Cole-Hopf).
    """
    phi = np.full_like(x, constant)
    phi_x = np.zeros_like(x)
    for mode, amplitude in amplitudes.items():
        decayed = amplitude * math.exp(-4.0 * math.pi**2 * mode**2 * nu * t)
        phi += decayed * np.cos(2.0 * math.pi * mode * x)
        phi_x -= 2.0 * math.pi * mode * decayed * np.sin(2.0 * math.pi * mode * x)
    return -2.0 * nu * phi_x / phi


@pytest.mark.parametrize(
    ("nu", "amplitudes"),
    [(0.1, {1: 0.5}), (0.02, {1: 0.5, 2: 0.3}), (0.01, {1: 0.95}), (0.005, {1: 0.4, 3: 0.2})],
)
def test_solution_at_the_default_step_matches_cole_hopf(nu: float, amplitudes: dict[int, float]) -> None:
    x = np.arange(256) / 256
    exact = cole_hopf(x, 1.0, nu, 1.0, amplitudes)
    computed = solve_burgers(cole_hopf(x, 0.0, nu, 1.0, amplitudes), nu, 1.0, BurgersParams().steps)
    # Measured: 4e-11 (nu = 0.1) down to 7e-13 (nu = 0.005); the series is exact to rounding at 256 points.
    assert np.max(np.abs(computed - exact)) < 1e-9 * np.max(np.abs(exact))


def test_time_error_falls_at_fourth_order() -> None:
    x = np.arange(256) / 256
    nu, amplitudes = 0.02, {1: 0.5, 2: 0.3}
    exact = cole_hopf(x, 1.0, nu, 1.0, amplitudes)
    initial = cole_hopf(x, 0.0, nu, 1.0, amplitudes)
    errors = [np.max(np.abs(solve_burgers(initial, nu, 1.0, steps) - exact)) for steps in (10, 20, 40)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 3.6) & (orders < 4.4)), (errors, orders)


def test_a_batch_is_solved_sample_by_sample() -> None:
    x = np.arange(128) / 128
    cases = [(0.1, {1: 0.5}), (0.1, {1: 0.2, 2: 0.4})]
    initial = np.stack([cole_hopf(x, 0.0, 0.1, 1.0, amplitudes) for _, amplitudes in cases])
    batched = solve_burgers(initial, 0.1, 0.5, steps=20)
    for row, sample in zip(batched, initial, strict=True):
        np.testing.assert_array_equal(row, solve_burgers(sample, 0.1, 0.5, steps=20))


def test_the_mean_is_conserved() -> None:
    u0 = random_initial_condition(np.random.default_rng(0), 256, 25.0, 5.0, 2.0) + 0.3
    u1 = solve_burgers(u0, 0.05, 1.0, steps=50)
    assert np.mean(u1) == pytest.approx(0.3, abs=1e-14)
    assert np.max(np.abs(u1 - 0.3)) > 1e-3  # the solution did not simply decay to its mean


def test_the_default_step_is_accurate_to_below_float32_rounding() -> None:
    u0 = random_initial_condition(sample_rng(0, 0), 1024, 25.0, 5.0, 2.0)
    steps = BurgersParams().steps
    default = solve_burgers(u0, 0.1, 1.0, steps)
    finer = solve_burgers(u0, 0.1, 1.0, 2 * steps)
    assert np.max(np.abs(default - finer)) < 6e-8 * np.max(np.abs(finer))


def test_initial_field_has_zero_mean_the_expected_variance_and_only_resolved_modes() -> None:
    size, sigma, tau, gamma, count = 64, 25.0, 5.0, 2.0, 2000
    rng = np.random.default_rng(0)
    fields = np.stack([random_initial_condition(rng, size, sigma, tau, gamma) for _ in range(count)])
    np.testing.assert_allclose(fields.mean(axis=1), 0.0, atol=1e-14)
    spectra = np.abs(np.fft.rfft(fields, axis=1))
    assert np.all(spectra[:, 22:] < 1e-10) and np.all(spectra[:, 21] > 0)  # 3k < 64 keeps k <= 21
    k = np.arange(1, 22)
    expected_variance = np.sum(2.0 * sigma**2 * ((2.0 * np.pi * k) ** 2 + tau**2) ** (-gamma))
    assert np.mean(fields**2) == pytest.approx(expected_variance, rel=0.05)


def test_generated_arrays_have_the_documented_layout() -> None:
    data = generate_burgers(BurgersParams(**SMALL))
    assert set(data) == {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}
    for split, count in (("train", 3), ("val", 1), ("test", 2)):
        for side in ("x", "y"):
            array = data[f"{side}_{split}"]
            assert array.shape == (count, 1, 64) and array.dtype == np.float32
            assert np.all(np.isfinite(array))


def test_each_sample_is_its_own_initial_condition_and_solution() -> None:
    params = BurgersParams(**SMALL)
    data = generate_burgers(params)
    inputs = np.concatenate([data["x_train"], data["x_val"], data["x_test"]])
    outputs = np.concatenate([data["y_train"], data["y_val"], data["y_test"]])
    for index in (0, 3, 5):  # first train, first val, last test
        initial = random_initial_condition(sample_rng(params.seed, index), 256, 25.0, 5.0, 2.0)
        final = solve_burgers(initial, params.nu, params.final_time, params.steps)
        np.testing.assert_array_equal(inputs[index, 0], initial[::4].astype(np.float32))
        np.testing.assert_array_equal(outputs[index, 0], final[::4].astype(np.float32))


def test_generation_is_deterministic_by_seed_and_independent_of_the_batch_size() -> None:
    first = generate_burgers(BurgersParams(**SMALL, seed=3, batch_size=6))
    again = generate_burgers(BurgersParams(**SMALL, seed=3, batch_size=1))
    other = generate_burgers(BurgersParams(**SMALL, seed=4))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.array_equal(first[key], other[key])


def test_coarse_output_is_the_fine_solution_at_the_subsampled_points() -> None:
    fine = generate_burgers(BurgersParams(**{**SMALL, "resolution": 128}))
    coarse = generate_burgers(BurgersParams(**{**SMALL, "resolution": 32}))
    for key in fine:
        np.testing.assert_array_equal(coarse[key], fine[key][..., ::4])


def test_the_cache_accepts_the_data_set(tmp_path: Path) -> None:
    data = load_dataset("burgers", SMALL, data_dir=tmp_path)
    assert data.x_train.shape == (3, 1, 64) and data.y_test.shape == (2, 1, 64)


def test_params_have_descriptions_and_the_recipe_defaults() -> None:
    params = BurgersParams()
    assert (params.n_train, params.n_val, params.n_test) == (1000, 100, 100)
    assert (params.fine_resolution, params.resolution, params.subsampling_step) == (8192, 1024, 8)
    assert (params.nu, params.sigma, params.tau, params.gamma, params.final_time) == (0.1, 25.0, 5.0, 2.0, 1.0)
    assert params.steps == 400
    assert all(field.description for field in BurgersParams.model_fields.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"n_tran": 10},
        {"n_train": 0},
        {"resolution": 1000},
        {"fine_resolution": 4},
        {"nu": 0.0},
        {"gamma": 0.5},
        {"dt": 0.3},
        {"dt": 2.0},
        {"batch_size": 0},
        {"seed": -1},
    ],
)
def test_params_reject_bad_values(bad: dict) -> None:
    with pytest.raises(ValidationError):
        BurgersParams(**bad)


def test_resolution_error_explains_the_subsampling_rule() -> None:
    with pytest.raises(ValidationError, match="multiple of resolution"):
        BurgersParams(resolution=1000)
