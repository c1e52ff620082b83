"""Linear solvers for data generation: every method against the direct solve on each family, the GCRO-DR
machinery (GMRES as its k = 0 case, the recycle space's invariants and content), SKR's sorting, ``auto``, the
random families, and the Darcy data set generated with each solver."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.sparse.linalg import LinearOperator, eigsh, gmres, onenormest, splu

from sweeplab.datagen.darcy import DarcyParams, darcy_system, generate_darcy, solve_darcy
from sweeplab.datagen.families import helmholtz_system, random_systems
from sweeplab.datagen.solvers import (
    SOLVER_METHODS,
    ConvergenceError,
    LinearSystem,
    choose_method,
    greedy_order,
    solve_sequence,
)
from sweeplab.datagen.solvers._gcrodr import GcroDr

TOLERANCE = 1e-9
# Small systems of each family (529 - 1521 unknowns); Helmholtz with k0 = 5 has one negative eigenvalue. Odd grids,
# which geometric multigrid coarsens (33 -> 17 nodes a side).
FAMILY_CASES = {
    "darcy_threshold": {"size": 33},
    "darcy_lognormal": {"size": 41},
    "poisson": {"size": 25},
    "helmholtz": {"size": 33, "wavenumber": 5.0},
}


def _condition_estimate(matrix: Any) -> float:
    """kappa_1(A), estimated; for the symmetric matrices here it bounds kappa_2 from above."""
    factor = splu(matrix.tocsc())
    inverse = LinearOperator(matrix.shape, matvec=factor.solve, rmatvec=lambda v: factor.solve(v, trans="T"))
    return onenormest(matrix) * onenormest(inverse)


def _relative_residual(system: LinearSystem, solution: np.ndarray) -> float:
    return float(np.linalg.norm(system.rhs - system.matrix @ solution) / np.linalg.norm(system.rhs))


@pytest.fixture(scope="module", params=list(FAMILY_CASES))
def family_case(request: pytest.FixtureRequest) -> tuple[str, list[LinearSystem], list[np.ndarray]]:
    systems = random_systems(request.param, 4, **FAMILY_CASES[request.param])
    reference, _ = solve_sequence(systems, "direct")
    return request.param, systems, reference


@pytest.mark.parametrize("method", ["amg", "gmg", "gmres", "skr", "auto"])
def test_every_method_agrees_with_the_direct_solve_to_the_tolerance(
    family_case: tuple[str, list[LinearSystem], list[np.ndarray]], method: str
) -> None:
    family, systems, reference = family_case
    if method in ("amg", "gmg") and family == "helmholtz":
        with pytest.raises(ValueError, match="positive definite"):
            solve_sequence(systems, method, TOLERANCE)
        return
    solutions, stats = solve_sequence(systems, method, TOLERANCE)
    assert sorted(stats.order.tolist()) == [0, 1, 2, 3]
    for system, solution, expected in zip(systems, solutions, reference, strict=True):
        assert _relative_residual(system, solution) <= TOLERANCE
        # ||x - x*|| / ||x*|| <= kappa ||r|| / ||b||: the tolerance, scaled by the condition number.
        error = np.linalg.norm(solution - expected) / np.linalg.norm(expected)
        assert error <= _condition_estimate(system.matrix) * TOLERANCE
    if stats.method != "direct":
        assert np.all(stats.iterations > 0)


def test_direct_solve_is_exact_to_rounding_on_every_family() -> None:
    for family, options in FAMILY_CASES.items():
        systems = random_systems(family, 2, **options)
        solutions, stats = solve_sequence(systems, "direct")
        assert stats.method == "direct" and stats.total_iterations == 0
        for system, solution in zip(systems, solutions, strict=True):
            assert _relative_residual(system, solution) < 1e-12


def test_gcro_dr_without_recycling_is_gmres() -> None:
    # k = 0 leaves plain GMRES(40): the same iterations as scipy's implementation, to rounding.
    (system,) = random_systems("darcy_lognormal", 1, 34)
    _, own = solve_sequence([system], "skr", 1e-8, recycle_dimension=0)
    steps = []
    _, info = gmres(
        system.matrix, system.rhs, rtol=1e-8, atol=0.0, restart=40, callback=steps.append, callback_type="pr_norm"
    )
    assert info == 0
    assert abs(own.total_iterations - len(steps)) <= 0.02 * len(steps)


def test_recycled_space_satisfies_the_gcro_dr_invariants_and_holds_the_slowest_eigenvectors() -> None:
    systems = random_systems("darcy_lognormal", 2, 34)
    solver = GcroDr(restart=40, recycle_dimension=20)
    for system in systems:
        solver.solve(system.matrix, system.rhs, 1e-10, 10_000)
    kept = solver._kept
    assert kept is not None and kept.shape == (systems[-1].unknowns, 20)
    # A U = C with orthonormal C for the last matrix.
    image = systems[-1].matrix @ kept
    np.testing.assert_allclose(image.T @ image, np.eye(20), atol=1e-8)
    # Harmonic Ritz vectors approximate the eigenvectors of the smallest eigenvalues, which GMRES finds slowest.
    _, eigenvectors = eigsh(systems[-1].matrix, k=3, sigma=0.0)
    basis, _ = np.linalg.qr(kept)
    outside = eigenvectors - basis @ (basis.T @ eigenvectors)
    assert np.linalg.norm(outside, axis=0).max() < 0.05


def test_recycling_cuts_the_iterations_of_later_systems() -> None:
    systems = random_systems("darcy_lognormal", 5, 42)
    _, plain = solve_sequence(systems, "skr", 1e-8, recycle_dimension=0)
    _, recycled = solve_sequence(systems, "skr", 1e-8, sort=False)
    assert recycled.iterations[1:].sum() < 0.5 * plain.iterations[1:].sum()
    # The same matrix with a new right-hand side: the recycle space of the first solve saves iterations.
    system = systems[0]
    new_rhs = np.random.default_rng(0).standard_normal(system.unknowns)
    solver = GcroDr(restart=40, recycle_dimension=20)
    _, first = solver.solve(system.matrix, system.rhs, 1e-8, 10_000)
    _, again = solver.solve(system.matrix, new_rhs, 1e-8, 10_000)
    _, without = GcroDr(restart=40, recycle_dimension=0).solve(system.matrix, new_rhs, 1e-8, 10_000)
    assert again < 0.85 * first and again < 0.5 * without


def test_skr_solves_in_greedy_order_and_returns_solutions_in_input_order() -> None:
    levels = [0.0, 5.0, 1.0, 4.0, 2.0, 3.0]
    assert greedy_order([np.full((3, 3), v) for v in levels]).tolist() == [0, 2, 4, 5, 3, 1]
    # Groups of 3: each sorted inside, the second starting next to where the first ended (level 5 -> 4).
    assert greedy_order([np.full((3, 3), v) for v in levels], group_size=3).tolist() == [0, 2, 1, 3, 5, 4]

    base = random_systems("darcy_lognormal", 1, 26)[0]
    systems = [
        LinearSystem(matrix=(1.0 + level) * base.matrix, rhs=base.rhs, parameter=np.full(4, level), definite=True)
        for level in levels
    ]
    solutions, stats = solve_sequence(systems, "skr", 1e-10)
    assert stats.order.tolist() == [0, 2, 4, 5, 3, 1]
    reference, _ = solve_sequence(systems, "direct")
    for solution, expected in zip(solutions, reference, strict=True):
        np.testing.assert_allclose(solution, expected, rtol=1e-6)
    _, unsorted = solve_sequence(systems, "skr", 1e-10, sort=False)
    assert unsorted.order.tolist() == list(range(6))


def test_auto_picks_the_direct_solver_for_small_or_indefinite_systems_and_amg_for_large_definite_ones() -> None:
    assert choose_method(6_400, definite=True) == "direct"
    assert choose_method(175_561, definite=True) == "amg"
    assert choose_method(175_561, definite=True, on_a_grid_hierarchy=True) == "gmg"
    assert choose_method(175_561, definite=False, on_a_grid_hierarchy=True) == "direct"
    assert choose_method(175_561, definite=False) == "direct"
    systems = random_systems("darcy_threshold", 2, 18)
    _, stats = solve_sequence(systems, "auto")
    assert stats.method == "direct"


def test_bad_requests_are_refused() -> None:
    systems = random_systems("darcy_threshold", 1, 18)
    with pytest.raises(ValueError, match="unknown solver"):
        solve_sequence(systems, "cg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tolerance"):
        solve_sequence(systems, "gmres", 0.0)
    with pytest.raises(ConvergenceError):
        solve_sequence(systems, "gmres", 1e-12, max_iterations=5)
    with pytest.raises(ConvergenceError):
        solve_sequence(systems, "skr", 1e-12, max_iterations=5)
    with pytest.raises(ValueError, match="unknown family"):
        random_systems("stokes", 1, 18)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gmg solver needs systems rediscretisable on an odd grid"):
        solve_sequence(systems, "gmg")  # 18 nodes a side: the grid does not halve


def test_geometric_multigrid_needs_about_as_many_iterations_on_every_grid() -> None:
    # The mark of a working multigrid: the V-cycle removes every scale of the error, so CG's iterations do not
    # grow as the grid is refined (unpreconditioned CG's grow like the grid's side; AMG-CG's, here, 14-16).
    coefficient = np.where(np.random.default_rng(5).normal(size=(257, 257)) > 0, 12.0, 3.0)
    iterations = {}
    for nodes in (65, 129, 257):
        step = (257 - 1) // (nodes - 1)
        _, stats = solve_sequence([darcy_system(coefficient[::step, ::step])], "gmg", 1e-10)
        iterations[nodes] = int(stats.iterations[0])
    assert max(iterations.values()) <= 20 and iterations[257] <= iterations[65] + 3, iterations


def test_a_zero_right_hand_side_gives_zero() -> None:
    (system,) = random_systems("darcy_threshold", 1, 18)
    zero = LinearSystem(system.matrix, np.zeros(system.unknowns), system.parameter, definite=True)
    for method in ("direct", "amg", "gmres", "skr"):
        (solution,), _ = solve_sequence([zero], method)  # type: ignore[arg-type]
        assert not solution.any()


def test_helmholtz_system_converges_at_second_order_and_knows_when_it_is_definite() -> None:
    # Constant k^2 = 30: u = sin(pi x) sin(pi y) solves -Laplace u - k^2 u = (2 pi^2 - 30) u.
    errors = []
    for n in (17, 33, 65):
        grid = np.linspace(0.0, 1.0, n)
        exact = np.outer(np.sin(np.pi * grid), np.sin(np.pi * grid))
        system = helmholtz_system(np.full((n, n), 30.0), (2 * np.pi**2 - 30.0) * exact)
        (solution,), _ = solve_sequence([system], "direct")
        errors.append(np.abs(solution - exact[1:-1, 1:-1].ravel()).max())
        assert not system.definite  # 30 > 2 pi^2: one negative eigenvalue
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 1.8) & (orders < 2.2)), (errors, orders)
    assert helmholtz_system(np.full((33, 33), 15.0)).definite
    assert not random_systems("helmholtz", 1, 34, wavenumber=7.5)[0].definite


def test_poisson_family_draws_coefficient_and_source_and_sorts_by_both() -> None:
    first, second = random_systems("poisson", 2, 18)
    assert first.parameter.shape == (2, 18, 18)
    assert np.all(first.parameter[0] > 0)  # the coefficient exp(g)
    assert not np.allclose(first.rhs, second.rhs)  # the source changes from system to system
    again = random_systems("poisson", 2, 18)
    np.testing.assert_array_equal(again[1].parameter, second.parameter)


# dcdm takes its directions from a trained network: tests/test_dcdm.py.
@pytest.mark.parametrize("method", [method for method in SOLVER_METHODS if method != "dcdm"])
def test_solve_darcy_with_each_solver_matches_the_direct_solve(method: str) -> None:
    coefficient = np.exp(np.random.default_rng(3).normal(0.0, 0.3, size=(33, 33)))
    expected = solve_darcy(coefficient)
    solution = solve_darcy(coefficient, solver=method, tolerance=1e-11)  # type: ignore[arg-type]
    assert np.all(solution[0] == 0) and np.all(solution[:, -1] == 0)
    np.testing.assert_allclose(solution, expected, rtol=0, atol=1e-8 * np.abs(expected).max())


SMALL = {"n_train": 30, "n_val": 2, "n_test": 3, "fine_resolution": 33, "resolution": 17, "coefficient": "lognormal"}


@pytest.mark.parametrize("method", ["amg", "gmg", "gmres", "skr", "auto"])
def test_darcy_data_with_any_solver_equal_the_direct_data_within_the_tolerance(method: str) -> None:
    direct = generate_darcy(DarcyParams(**SMALL, workers=1))
    other = generate_darcy(DarcyParams(**SMALL, solver=method, tolerance=1e-9, workers=1))
    for key in direct:
        np.testing.assert_allclose(other[key], direct[key], rtol=0, atol=1e-6 * np.abs(direct[key]).max())


def test_darcy_data_with_recycling_do_not_depend_on_the_workers(pool_sizes: list[int]) -> None:
    # skr solves blocks of 25 consecutive samples: 60 samples make three; the first is solved in this process,
    # the pool of two workers takes the others.
    params = {**SMALL, "n_train": 55, "solver": "skr", "tolerance": 1e-9}
    serial = generate_darcy(DarcyParams(**params, workers=1))
    assert pool_sizes == []
    parallel = generate_darcy(DarcyParams(**params, workers=2))
    assert pool_sizes == [2]
    for key in serial:
        np.testing.assert_array_equal(serial[key], parallel[key])
