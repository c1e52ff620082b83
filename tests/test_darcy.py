"""The Darcy data set: the solver against a manufactured solution, the random field's statistics, the
generator's determinism and layout, and the parameter model."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from sweeplab.datagen._grf import gaussian_random_field, grf_spectral_scale, sample_gaussian_random_field
from sweeplab.datagen.darcy import DarcyParams, darcy_sample, generate_darcy, solve_darcy

SMALL = {"n_train": 5, "n_val": 2, "n_test": 3, "fine_resolution": 33, "resolution": 17}


def _manufactured_problem(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a = 2 + sin(2x + y) (not symmetric in x and y), u = sin(pi x) sin(2 pi y), f = -div(a grad u)."""
    grid = np.linspace(0.0, 1.0, n)
    x, y = np.meshgrid(grid, grid, indexing="ij")  # axis 0 is x
    a = 2.0 + np.sin(2 * x + y)
    a_x, a_y = 2.0 * np.cos(2 * x + y), np.cos(2 * x + y)
    u = np.sin(np.pi * x) * np.sin(2 * np.pi * y)
    u_x = np.pi * np.cos(np.pi * x) * np.sin(2 * np.pi * y)
    u_y = 2 * np.pi * np.sin(np.pi * x) * np.cos(2 * np.pi * y)
    laplacian_u = -5 * np.pi**2 * u
    f = -(a_x * u_x + a_y * u_y + a * laplacian_u)
    return a, f, u


def test_solver_converges_at_second_order_on_a_manufactured_solution() -> None:
    errors = []
    for n in (17, 33, 65):
        a, f, exact = _manufactured_problem(n)
        errors.append(np.abs(solve_darcy(a, f) - exact).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 1.8) & (orders < 2.2)), (errors, orders)
    assert errors[-1] < 1e-3


def test_solver_matches_the_torsion_constant_and_scales_with_the_coefficient() -> None:
    # -Laplace u = 1 on the unit square: u(1/2, 1/2) = 0.0736713... (series solution); a = 12 divides u by 12.
    n = 65
    centre = solve_darcy(np.ones((n, n)))[n // 2, n // 2]
    assert centre == pytest.approx(0.0736713, rel=2e-3)
    assert solve_darcy(np.full((n, n), 12.0))[n // 2, n // 2] == pytest.approx(centre / 12, rel=1e-12)


def test_solver_output_vanishes_on_the_boundary_and_is_positive_inside() -> None:
    rng = np.random.default_rng(1)
    u = solve_darcy(rng.uniform(1.0, 5.0, size=(21, 21)))
    assert u.shape == (21, 21)
    assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)
    assert np.all(u[1:-1, 1:-1] > 0)  # maximum principle for f = 1 > 0


def test_solver_rejects_a_non_square_grid() -> None:
    with pytest.raises(ValueError, match="square"):
        solve_darcy(np.ones((5, 6)))


def test_random_field_amplitude_follows_the_orthonormal_inverse_dct() -> None:
    # With the orthonormal inverse DCT, the spatial mean of g^2 equals sum((coef * xi)^2) exactly (Parseval).
    rng = np.random.default_rng(0)
    size, alpha, tau = 33, 2.0, 3.0
    white_noise = rng.standard_normal((size, size))
    field = gaussian_random_field(white_noise, alpha, tau)
    scale = grf_spectral_scale(size, alpha, tau)
    assert np.mean(field**2) == pytest.approx(np.sum((scale * white_noise) ** 2), rel=1e-12)
    assert scale[0, 0] == 0 and scale[0, 1] == pytest.approx(3.0 / (np.pi**2 + 9.0))


def test_random_field_has_zero_mean_and_the_expected_variance() -> None:
    rng = np.random.default_rng(0)
    size, alpha, tau, batch = 33, 2.0, 3.0, 2000
    fields = sample_gaussian_random_field(rng, size, alpha, tau, batch=batch)
    assert fields.shape == (batch, size, size)
    np.testing.assert_allclose(fields.mean(axis=(1, 2)), 0.0, atol=1e-12)  # no constant mode
    pointwise_std = fields.std(axis=0)
    assert np.all(np.abs(fields.mean(axis=0)) < 5 * pointwise_std / np.sqrt(batch))
    expected_variance = np.sum(grf_spectral_scale(size, alpha, tau) ** 2)
    assert np.mean(fields**2) == pytest.approx(expected_variance, rel=0.05)


def test_threshold_coefficient_takes_both_values_and_lognormal_is_exp_of_the_field() -> None:
    params = DarcyParams(**SMALL)
    coefficient, _ = darcy_sample(params, 0)
    assert set(np.unique(coefficient)) == {3.0, 12.0}

    lognormal = DarcyParams(**{**SMALL, "coefficient": "lognormal", "resolution": 33})
    coefficient, _ = darcy_sample(lognormal, 0)
    rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(0,)))
    field = sample_gaussian_random_field(rng, 33, lognormal.alpha, lognormal.tau)
    np.testing.assert_allclose(coefficient, np.exp(field).astype(np.float32))


def test_generated_arrays_have_the_documented_layout() -> None:
    params = DarcyParams(**SMALL)
    data = generate_darcy(params)
    assert set(data) == {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}
    for split, count in (("train", 5), ("val", 2), ("test", 3)):
        for side in ("x", "y"):
            array = data[f"{side}_{split}"]
            assert array.shape == (count, 1, 17, 17) and array.dtype == np.float32
        outputs = data[f"y_{split}"]
        assert np.all(outputs[..., 0, :] == 0) and np.all(outputs[..., -1, :] == 0)
        assert np.all(outputs[..., :, 0] == 0) and np.all(outputs[..., :, -1] == 0)
        assert np.all(outputs[..., 1:-1, 1:-1] > 0)


def test_splits_follow_sample_order_and_each_sample_is_its_own_solution() -> None:
    params = DarcyParams(**SMALL)
    data = generate_darcy(params)
    inputs = np.concatenate([data["x_train"], data["x_val"], data["x_test"]])
    outputs = np.concatenate([data["y_train"], data["y_val"], data["y_test"]])
    for index in (0, 5, 7, 9):  # first train, first val, first test, last test
        coefficient, solution = darcy_sample(params, index)
        np.testing.assert_array_equal(inputs[index, 0], coefficient)
        np.testing.assert_array_equal(outputs[index, 0], solution)


def test_generation_is_deterministic_by_seed() -> None:
    first = generate_darcy(DarcyParams(**SMALL, seed=3))
    again = generate_darcy(DarcyParams(**SMALL, seed=3))
    other = generate_darcy(DarcyParams(**SMALL, seed=4))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.array_equal(first[key], other[key])


def test_coarse_output_is_the_fine_solution_at_the_subsampled_nodes() -> None:
    fine = generate_darcy(DarcyParams(**{**SMALL, "resolution": 33}))
    coarse = generate_darcy(DarcyParams(**{**SMALL, "resolution": 9}))
    for key in fine:
        np.testing.assert_array_equal(coarse[key], fine[key][..., ::4, ::4])


def test_process_pool_gives_the_same_data_as_one_process(pool_sizes: list[int]) -> None:
    params = {**SMALL, "n_train": 12}
    serial = generate_darcy(DarcyParams(**params, workers=1))
    assert pool_sizes == []
    parallel = generate_darcy(DarcyParams(**params, workers=2))
    assert pool_sizes == [2]
    for key in serial:
        np.testing.assert_array_equal(serial[key], parallel[key])


def test_params_have_descriptions_and_the_recipe_defaults() -> None:
    params = DarcyParams()
    assert (params.n_train, params.n_val, params.n_test) == (1000, 100, 100)
    assert (params.fine_resolution, params.resolution, params.subsampling_step) == (421, 85, 5)
    assert (params.alpha, params.tau, params.a_high, params.a_low) == (2.0, 3.0, 12.0, 3.0)
    assert all(field.description for field in DarcyParams.model_fields.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"n_tran": 10},
        {"n_train": 0},
        {"n_val": -1},
        {"resolution": 86},
        {"fine_resolution": 65, "resolution": 24},
        {"resolution": 1},
        {"seed": -1},
        {"workers": 0},
        {"coefficient": "binary"},
        {"solver": "cg"},
    ],
)
def test_params_reject_bad_values(bad: dict) -> None:
    with pytest.raises(ValidationError):
        DarcyParams(**bad)


def test_resolution_error_explains_the_subsampling_rule() -> None:
    with pytest.raises(ValidationError, match="multiple of"):
        DarcyParams(fine_resolution=421, resolution=100)
