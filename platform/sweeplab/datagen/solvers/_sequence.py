"""One call solves a whole sequence of systems: the methods by name, ``auto``'s choice, and SKR's sorting."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from sweeplab.datagen.solvers._dcdm import DirectionModel, solve_dcdm
from sweeplab.datagen.solvers._direct import solve_direct
from sweeplab.datagen.solvers._gcrodr import GcroDr
from sweeplab.datagen.solvers._krylov import solve_amg, solve_gmres
from sweeplab.datagen.solvers._multigrid import MIN_NODES, coarsens, solve_gmg
from sweeplab.datagen.solvers._system import LinearSystem

__all__ = [
    "SOLVER_METHODS",
    "SolveStats",
    "SolverMethod",
    "choose_method",
    "greedy_order",
    "iter_solutions",
    "resolve_method",
    "single_threaded_blas",
    "solve_sequence",
]

SolverMethod = Literal["direct", "amg", "gmg", "gmres", "skr", "dcdm", "auto"]
SOLVER_METHODS: tuple[str, ...] = get_args(SolverMethod)

# `auto` takes AMG-CG from this many unknowns on (symmetric positive definite systems only); see choose_method.
_AMG_FROM_UNKNOWNS = 16_000


@dataclass(frozen=True)
class SolveStats:
    """What a ``solve_sequence`` call did: ``iterations[i]`` is for system i of the input (0 for direct)."""

    method: str  # the method that ran (``auto`` resolved)
    iterations: np.ndarray
    seconds: float
    order: np.ndarray  # the order the systems were solved in

    @property
    def total_iterations(self) -> int:
        return int(self.iterations.sum())


def choose_method(unknowns: int, definite: bool, on_a_grid_hierarchy: bool = False) -> str:
    """The method ``auto`` uses for systems of this size.

    Measured on 2 busy cores with one BLAS thread, Darcy (threshold coefficient) to 1e-10, time of AMG-CG over
    sparse LU per system: 1.9 at 4,096 unknowns, 1.3 at 7,056, 1.1 at 10,816, 0.96 at 19,321, 0.8 at 32,041,
    0.6 at 89,401 and ~0.65 at 175,561 (the 421^2 grid); the crossover lies near 16,000, and within 10,000 -
    20,000 either choice is within 10% of the other. The Krylov methods without preconditioner are never
    competitive in 2D, recycling or not (Darcy n = 6,400 at 1e-8: LU 7x faster than SKR; bench/datagen.py).
    AMG-CG needs a definite matrix, so indefinite systems (Helmholtz) always go to the LU. Where the systems can
    be rediscretised on coarser grids (Darcy, Poisson), geometric multigrid replaces AMG: at 421^2 to 1e-10 it
    solved in 0.3-0.5x AMG-CG's time, its setup being a rediscretisation rather than an analysis of the matrix
    (bench/datagen.py, BENCHMARKS.md).
    """
    if definite and unknowns >= _AMG_FROM_UNKNOWNS:
        return "gmg" if on_a_grid_hierarchy else "amg"
    return "direct"


def solve_sequence(
    systems: Sequence[LinearSystem],
    method: SolverMethod = "auto",
    tolerance: float = 1e-10,
    *,
    sort: bool = True,
    restart: int = 40,
    recycle_dimension: int = 20,
    group_size: int = 200,
    max_iterations: int = 100_000,
    directions: DirectionModel | None = None,
) -> tuple[list[np.ndarray], SolveStats]:
    """Solve every system; returns the solutions in input order and the statistics.

    ``tolerance`` bounds the relative residual of the iterative methods. ``sort``, ``recycle_dimension`` and
    ``group_size`` apply to ``skr`` (``sort=False`` gives plain recycling in input order), ``restart`` to
    ``gmres`` and ``skr``, ``directions`` (the trained network's, see ``_dcdm``) to ``dcdm``;
    ``max_iterations`` bounds the Krylov iterations per system (ConvergenceError beyond). The BLAS runs
    single-threaded meanwhile: the dense work here is tall-skinny products, which a second thread slows down on
    busy cores (pyamg's setup took 5x longer with two threads, measured).
    """
    solutions: list[np.ndarray] = [np.empty(0)] * len(systems)
    iterations = np.zeros(len(systems), dtype=np.int64)
    order = []
    started = time.perf_counter()  # SKR's sorting is part of its cost
    with single_threaded_blas():
        solved = iter_solutions(
            systems,
            method,
            tolerance,
            sort=sort,
            restart=restart,
            recycle_dimension=recycle_dimension,
            group_size=group_size,
            max_iterations=max_iterations,
            directions=directions,
        )
        for index, solution, count in solved:
            solutions[index], iterations[index] = solution, count
            order.append(index)
    seconds = time.perf_counter() - started
    resolved = resolve_method(systems, method)
    return solutions, SolveStats(method=resolved, iterations=iterations, seconds=seconds, order=np.array(order))


def resolve_method(systems: Sequence[LinearSystem], method: SolverMethod) -> str:
    """``method``, with ``auto`` replaced by its choice for these systems; refuses what cannot work."""
    if method not in SOLVER_METHODS:
        raise ValueError(f"unknown solver {method!r}; choose one of {', '.join(SOLVER_METHODS)}")
    definite = all(s.definite for s in systems)
    hierarchy = all(coarsens(s) for s in systems)
    if method == "auto":
        return choose_method(max((s.unknowns for s in systems), default=0), definite, hierarchy)
    if method in ("amg", "gmg") and not definite:
        raise ValueError(f"the {method} solver (multigrid-preconditioned CG) needs symmetric positive definite systems")
    if method == "dcdm" and not (definite and all(s.coefficient is not None for s in systems)):
        raise ValueError("the dcdm solver needs symmetric positive definite systems assembled from a nodal coefficient")
    if method == "gmg" and not hierarchy:
        raise ValueError(f"the gmg solver needs systems rediscretisable on an odd grid of at least {MIN_NODES} nodes")
    return method


def iter_solutions(
    systems: Sequence[LinearSystem],
    method: SolverMethod = "auto",
    tolerance: float = 1e-10,
    *,
    sort: bool = True,
    restart: int = 40,
    recycle_dimension: int = 20,
    group_size: int = 200,
    max_iterations: int = 100_000,
    directions: DirectionModel | None = None,
) -> Iterator[tuple[int, np.ndarray, int]]:
    """``solve_sequence`` one system at a time: yields (input index, solution, iterations) in solving order.

    Lets a caller interleave methods system by system (bench/datagen.py does, to time them fairly on shared
    cores). Arguments are checked now; SKR's sorting runs at the first ``next``. Leaves the BLAS threads alone.
    """
    resolved = resolve_method(systems, method)
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance must lie in (0, 1), got {tolerance}")
    recycler = GcroDr(restart, recycle_dimension) if resolved == "skr" else None
    if resolved == "dcdm" and directions is None:
        raise ValueError("the dcdm solver needs the directions of a trained network (load_direction_model)")

    def solve(system: LinearSystem) -> tuple[np.ndarray, int]:
        if not system.rhs.any():  # the relative residual is undefined, the answer exact
            return np.zeros_like(system.rhs, dtype=np.float64), 0
        if resolved == "direct":
            return solve_direct(system), 0
        if resolved == "amg":
            return solve_amg(system, tolerance, max_iterations)
        if resolved == "gmg":
            return solve_gmg(system, tolerance, max_iterations)
        if resolved == "gmres":
            return solve_gmres(system, tolerance, restart, max_iterations)
        if resolved == "dcdm":
            assert directions is not None
            return solve_dcdm(system, directions, tolerance, max_iterations)
        assert recycler is not None
        return recycler.solve(system.matrix, system.rhs, tolerance, max_iterations)

    def solutions() -> Iterator[tuple[int, np.ndarray, int]]:
        if resolved == "skr" and sort:
            order = greedy_order([s.parameter for s in systems], group_size)
        else:
            order = np.arange(len(systems))
        for index in order:
            solution, iterations = solve(systems[index])
            yield int(index), solution, iterations

    return solutions()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit the BLAS to one thread meanwhile (with threadpoolctl; without it, a no-op)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the BLAS keeps its thread count
        context: Any = nullcontext()
    else:
        context = threadpool_limits(limits=1, user_api="blas")
    with context:
        yield


def greedy_order(parameters: Sequence[np.ndarray], group_size: int = 200) -> np.ndarray:
    """Greedy nearest-neighbour order of the fields (Frobenius distance), the sorting step of SKR.

    Within each group of ``group_size`` consecutive inputs (the paper groups before sorting when there are
    many systems: the pairwise distances cost group_size^2 field sizes), start from the field nearest to the
    last one placed (the group's first field for the first group) and repeatedly take the nearest unvisited.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    fields = [np.asarray(p, dtype=np.float64).ravel() for p in parameters]
    order: list[int] = []
    for start in range(0, len(fields), group_size):
        group = np.stack(fields[start : start + group_size])
        squared_norms = np.einsum("ij,ij->i", group, group)
        # |p_i - p_j|^2 from one matrix product; rounding can make it slightly negative, which is harmless.
        distances = squared_norms[:, None] + squared_norms[None, :] - 2.0 * (group @ group.T)
        # The first group starts anywhere (at its first field); later ones next to the last field placed.
        current = int(np.argmin(np.sum((group - fields[order[-1]]) ** 2, axis=1))) if order else 0
        visited = np.zeros(len(group), dtype=bool)
        for _ in range(len(group)):
            visited[current] = True
            order.append(start + current)
            current = int(np.argmin(np.where(visited, np.inf, distances[current])))
    return np.array(order, dtype=np.int64)
