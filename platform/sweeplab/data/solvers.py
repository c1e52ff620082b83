"""Linear solvers for data generation: one call solves a whole sequence of systems A_i x_i = b_i.

Data sets for operator learning solve many systems whose matrices come from similar parameter fields p_i. The
methods (``SolverMethod``):

- ``direct``: sparse LU (SuperLU) with a symmetric fill-reducing ordering, per system.
- ``amg``: conjugate gradients preconditioned by one algebraic-multigrid V-cycle (pyamg, classical Ruge-Stueben
  coarsening), set up per system. Only for symmetric positive definite systems.
- ``gmres``: scipy's restarted GMRES(40), no preconditioner: the baseline of the SKR paper.
- ``skr``: Sorting Krylov Recycling (Wang et al., ICLR 2024): the systems are put in greedy nearest-neighbour
  order of their parameter fields (Frobenius distance), then solved one after another by GCRO-DR(m = 40,
  k = 20) (Parks, de Sturler et al. 2006), which carries a k-dimensional recycle space from each system to the
  next. GCRO-DR is implemented here (``_GcroDr``), not scipy's ``gcrotmk``: see its docstring. No
  preconditioner, as in the paper's unpreconditioned setting.
- ``auto``: ``choose_method`` by size and definiteness, from the measurements recorded there.

Tolerance: the iterative methods stop when the true relative residual ||b - A x|| / ||b|| <= tolerance (checked
with a fresh product A x, not the recurrence); the direct method is exact to rounding. Solutions come back in
the order of the input, whatever order the method solved them in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

__all__ = [
    "ConvergenceError",
    "LinearSystem",
    "SolveStats",
    "SolverMethod",
    "choose_method",
    "greedy_order",
    "iter_solutions",
    "resolve_method",
    "single_threaded_blas",
    "solve_sequence",
]

SolverMethod = Literal["direct", "amg", "gmres", "skr", "auto"]
SOLVER_METHODS: tuple[str, ...] = get_args(SolverMethod)

# `auto` takes AMG-CG from this many unknowns on (symmetric positive definite systems only); see choose_method.
_AMG_FROM_UNKNOWNS = 16_000


class ConvergenceError(RuntimeError):
    """An iterative solver did not reach the requested tolerance within its iteration budget."""


@dataclass(frozen=True)
class LinearSystem:
    """One system ``matrix @ x = rhs``; ``parameter`` is the field it was assembled from (SKR sorts by it)."""

    matrix: Any  # a square scipy sparse array
    rhs: np.ndarray
    parameter: np.ndarray
    definite: bool  # symmetric positive definite: AMG-CG applies

    @property
    def unknowns(self) -> int:
        return self.rhs.shape[0]


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


def choose_method(unknowns: int, definite: bool) -> str:
    """The method ``auto`` uses for systems of this size.

    Measured on 2 busy cores with one BLAS thread, Darcy (threshold coefficient) to 1e-10, time of AMG-CG over
    sparse LU per system: 1.9 at 4,096 unknowns, 1.3 at 7,056, 1.1 at 10,816, 0.96 at 19,321, 0.8 at 32,041,
    0.6 at 89,401 and ~0.65 at 175,561 (the 421^2 grid); the crossover lies near 16,000, and within 10,000 -
    20,000 either choice is within 10% of the other. The Krylov methods without preconditioner are never
    competitive in 2D, recycling or not (Darcy n = 6,400 at 1e-8: LU 7x faster than SKR; bench/datagen.py).
    AMG-CG needs a definite matrix, so indefinite systems (Helmholtz) always go to the LU.
    """
    if definite and unknowns >= _AMG_FROM_UNKNOWNS:
        return "amg"
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
) -> tuple[list[np.ndarray], SolveStats]:
    """Solve every system; returns the solutions in input order and the statistics.

    ``tolerance`` bounds the relative residual of the iterative methods. ``sort``, ``recycle_dimension`` and
    ``group_size`` apply to ``skr`` (``sort=False`` gives plain recycling in input order), ``restart`` to
    ``gmres`` and ``skr``; ``max_iterations`` bounds the Krylov iterations per system (ConvergenceError
    beyond). The BLAS runs single-threaded meanwhile: the dense work here is tall-skinny products, which a
    second thread slows down on busy cores (pyamg's setup took 5x longer with two threads, measured).
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
    if method == "auto":
        return choose_method(max((s.unknowns for s in systems), default=0), definite)
    if method == "amg" and not definite:
        raise ValueError("the amg solver (AMG-preconditioned CG) needs symmetric positive definite systems")
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
) -> Iterator[tuple[int, np.ndarray, int]]:
    """``solve_sequence`` one system at a time: yields (input index, solution, iterations) in solving order.

    Lets a caller interleave methods system by system (bench/datagen.py does, to time them fairly on shared
    cores). Arguments are checked now; SKR's sorting runs at the first ``next``. Leaves the BLAS threads alone.
    """
    resolved = resolve_method(systems, method)
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance must lie in (0, 1), got {tolerance}")
    recycler = _GcroDr(restart, recycle_dimension) if resolved == "skr" else None

    def solve(system: LinearSystem) -> tuple[np.ndarray, int]:
        if not system.rhs.any():  # the relative residual is undefined, the answer exact
            return np.zeros_like(system.rhs, dtype=np.float64), 0
        if resolved == "direct":
            return _solve_direct(system), 0
        if resolved == "amg":
            return _solve_amg(system, tolerance, max_iterations)
        if resolved == "gmres":
            return _solve_gmres(system, tolerance, restart, max_iterations)
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


def _solve_direct(system: LinearSystem) -> np.ndarray:
    from scipy.sparse.linalg import splu

    # Our matrices are structurally symmetric: a symmetric ordering with diagonal pivots preferred fills in about
    # half as much as the default COLAMD and factorises ~1.7x faster at 421 x 421 (measured). Pivoting still
    # applies, so this is safe for indefinite matrices too.
    factor = splu(system.matrix.tocsc(), permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
    return factor.solve(system.rhs)


def _relative_residual(matrix: Any, solution: np.ndarray, rhs: np.ndarray) -> float:
    return float(np.linalg.norm(rhs - matrix @ solution) / np.linalg.norm(rhs))


def _solve_amg(system: LinearSystem, tolerance: float, max_iterations: int) -> tuple[np.ndarray, int]:
    import pyamg
    from scipy.sparse.linalg import cg

    matrix = system.matrix.tocsr()
    # Classical (Ruge-Stueben) coarsening rather than smoothed aggregation: on these scalar 2D diffusion
    # matrices its setup takes ~0.6x the time for 14 CG iterations instead of 11-12, 1.3x faster per solve to
    # 1e-10 at 421^2. Forward Gauss-Seidel before and backward after keep the V-cycle symmetric, as CG needs,
    # at half the smoothing cost of symmetric sweeps on both sides; an LU on the coarsest 500 unknowns ends
    # the recursion early. Together 15% faster than pyamg's defaults at 421^2 (measured, one BLAS thread).
    hierarchy = pyamg.ruge_stuben_solver(
        matrix,
        presmoother=("gauss_seidel", {"sweep": "forward"}),
        postsmoother=("gauss_seidel", {"sweep": "backward"}),
        max_coarse=500,
        coarse_solver="splu",
    )
    preconditioner = hierarchy.aspreconditioner(cycle="V")
    solution = np.zeros_like(system.rhs)
    total = 0
    # CG stops on its recurrence residual, which can drift from the true one: continue from the answer if so.
    while True:
        steps = 0

        def count(_: np.ndarray) -> None:
            nonlocal steps
            steps += 1

        solution, _ = cg(
            matrix,
            system.rhs,
            x0=solution,
            rtol=tolerance,
            maxiter=max_iterations - total,
            M=preconditioner,
            callback=count,
        )
        total += steps
        if _relative_residual(matrix, solution, system.rhs) <= tolerance:
            return solution, total
        if steps == 0 or total >= max_iterations:
            raise ConvergenceError(f"AMG-CG did not reach tolerance {tolerance} in {total} iterations")


def _solve_gmres(system: LinearSystem, tolerance: float, restart: int, max_iterations: int) -> tuple[np.ndarray, int]:
    from scipy.sparse.linalg import gmres

    matrix = system.matrix.tocsr()
    steps = 0

    def count(_: float) -> None:
        nonlocal steps
        steps += 1

    # scipy's maxiter counts restart cycles; it checks the true residual at the end of each.
    solution, info = gmres(
        matrix,
        system.rhs,
        rtol=tolerance,
        atol=0.0,
        restart=restart,
        maxiter=-(-max_iterations // restart),
        callback=count,
        callback_type="pr_norm",
    )
    if info != 0:
        raise ConvergenceError(f"GMRES({restart}) did not reach tolerance {tolerance} in {steps} iterations")
    return solution, steps


class _GcroDr:
    """GCRO-DR(m, k) (Parks, de Sturler, Mackey, Johnson, Maiti 2006), written from the paper's algorithm.

    Keeps a k-dimensional recycle space between calls. For a new matrix A the kept basis Y gives
    A Y = Q R (thin QR), C = Q, U = Y R^{-1}, so A U = C with C orthonormal. Each cycle projects the residual
    off span(C) (x += U C^T r), runs m - k Arnoldi steps with (I - C C^T) A, and takes the minimum-residual
    update over span([U, V]); the recycle space then becomes the k harmonic Ritz vectors of A with respect to
    that space (the smallest in magnitude, which are what slows restarted GMRES). The first cycle without a
    recycle space is a GMRES(m) cycle, and k = 0 is GMRES(m).

    Why not scipy's ``gcrotmk`` with a kept ``CU`` list: it is GCROT(m, k) (de Sturler 1999, Hicken and Zingg
    2010), whose recycle space is chosen by optimal truncation of the outer corrections, not by harmonic Ritz
    vectors; the SKR paper uses GCRO-DR, and the issue asks for it.

    Iterations counted: Arnoldi steps plus the k products A Y of each new system (the products that check
    the true residual once per cycle are not counted, as for GMRES).
    """

    def __init__(self, restart: int, recycle_dimension: int) -> None:
        if not 0 <= recycle_dimension < restart:
            raise ValueError(f"need 0 <= recycle dimension < restart, got k = {recycle_dimension}, m = {restart}")
        self.restart = restart
        self.recycle_dimension = recycle_dimension
        self._kept: np.ndarray | None = None  # Y: the recycle basis carried to the next system

    def solve(self, matrix: Any, rhs: np.ndarray, tolerance: float, max_iterations: int) -> tuple[np.ndarray, int]:
        from scipy.linalg import qr

        matrix = matrix.tocsr()
        rhs = np.asarray(rhs, dtype=np.float64)
        solution = np.zeros_like(rhs)
        target = tolerance * np.linalg.norm(rhs)
        if target == 0.0:
            return solution, 0
        residual = rhs.copy()
        iterations = 0
        basis_c: np.ndarray | None = None  # C, orthonormal, with A U = C
        basis_u: np.ndarray | None = None
        kept = self._kept
        if kept is not None and kept.shape[0] == rhs.shape[0]:
            image, triangle = qr(np.asarray(matrix @ kept), mode="economic", check_finite=False)
            iterations += kept.shape[1]
            if _well_conditioned(triangle):
                basis_c = np.asfortranarray(image)
                basis_u = kept @ _inverse_triangle(triangle)

        while True:
            if basis_c is not None:
                assert basis_u is not None
                # The minimum-residual correction from span(U): as A U = C, it removes r's component in C.
                coefficients = basis_c.T @ residual
                solution += basis_u @ coefficients
                residual -= basis_c @ coefficients
            if np.linalg.norm(residual) <= target:
                # Confirmed with a fresh product: A U = C holds only up to rounding.
                residual = rhs - matrix @ solution
                if np.linalg.norm(residual) <= target:
                    break
            if iterations >= max_iterations:
                raise ConvergenceError(
                    f"GCRO-DR({self.restart}, {self.recycle_dimension}) did not reach tolerance {tolerance} "
                    f"in {iterations} iterations"
                )
            cycle = _Cycle(matrix, residual, np.linalg.norm(residual), basis_c, self.restart, target)
            iterations += cycle.steps
            correction = cycle.correction(basis_u)
            solution += correction
            # The true residual, so that the stopping test never rests on a drifting recurrence.
            residual = rhs - matrix @ solution
            if self.recycle_dimension > 0 and not cycle.broke_down:
                recycled = cycle.harmonic_ritz_space(basis_u, self.recycle_dimension)
                if recycled is not None:
                    basis_c, basis_u = recycled
        if basis_u is not None:
            self._kept = basis_u
        return solution, iterations


def _inverse_triangle(triangle: np.ndarray) -> np.ndarray:
    # Y R^{-1} as Y times the small inverse: a triangular solve with thousands of right-hand sides is ~5x
    # slower here (measured at n = 6400, k = 20), and R is well conditioned (checked before).
    from scipy.linalg import solve_triangular

    return solve_triangular(triangle, np.eye(triangle.shape[0]), check_finite=False)


def _well_conditioned(triangle: np.ndarray) -> bool:
    diagonal = np.abs(np.diag(triangle))
    return bool(diagonal.size) and diagonal.min() > 1e-8 * diagonal.max()


class _Cycle:
    """One GCRO-DR cycle: Arnoldi with (I - C C^T) A from r / ||r|| and the least-squares solve.

    Keeps C and the Arnoldi vectors side by side as V_hat = [C, V] (column-major), so that orthogonalising a
    new vector against both is one matrix-vector product (classical Gram-Schmidt, repeated when the first pass
    cancels much of the vector). The coefficients against C form B = C^T A V, those against V the Hessenberg
    matrix H. With r orthogonal to C, the least-squares problem splits: y minimises ||r|| e_1 - H y|| (GMRES,
    Givens rotations give the residual norm at every step, so the cycle stops as soon as it is small enough)
    and the update is x += V y - U B y.
    """

    def __init__(
        self,
        matrix: Any,
        residual: np.ndarray,
        residual_norm: float,
        basis_c: np.ndarray | None,
        restart: int,
        target: float,
    ) -> None:
        from scipy.linalg import solve_triangular
        from scipy.linalg.lapack import dlartg

        size = residual.shape[0]
        self.recycled = 0 if basis_c is None else basis_c.shape[1]
        max_steps = restart - self.recycled
        p = self.recycled
        self.v_hat = np.empty((size, p + max_steps + 1), order="F")
        if basis_c is not None:
            self.v_hat[:, :p] = basis_c
        self.v_hat[:, p] = residual / residual_norm
        # coefficients[:, j] = V_hat^T A v_j: rows :p are B, rows p: are the Hessenberg column.
        self.coefficients = np.zeros((p + max_steps + 1, max_steps))
        rotated = np.zeros((max_steps + 1, max_steps))  # H after the Givens rotations: upper triangular
        rotations = np.zeros((max_steps, 2))
        self.projected_rhs = np.zeros(max_steps + 1)
        self.projected_rhs[0] = residual_norm
        self.broke_down = False

        steps = 0
        for j in range(max_steps):
            vector = matrix @ self.v_hat[:, p + j]
            norm_before = math.sqrt(vector @ vector)
            columns = self.v_hat[:, : p + j + 1]
            coefficients = columns.T @ vector
            vector -= columns @ coefficients
            norm = math.sqrt(vector @ vector)
            if norm < 0.7 * norm_before:  # much cancelled: one more pass restores orthogonality
                correction = columns.T @ vector
                vector -= columns @ correction
                coefficients += correction
                norm = math.sqrt(vector @ vector)
            self.coefficients[: p + j + 1, j] = coefficients
            self.coefficients[p + j + 1, j] = norm
            steps = j + 1

            column = np.concatenate([coefficients[p:], [norm]])
            for i in range(j):
                c, s = rotations[i]
                column[i], column[i + 1] = c * column[i] + s * column[i + 1], -s * column[i] + c * column[i + 1]
            c, s, radius = dlartg(column[j], column[j + 1])
            rotations[j] = c, s
            column[j], column[j + 1] = radius, 0.0
            rotated[: j + 2, j] = column
            self.projected_rhs[j], self.projected_rhs[j + 1] = c * self.projected_rhs[j], -s * self.projected_rhs[j]

            if norm <= 1e-14 * norm_before:  # the Krylov space is invariant: the cycle's answer is exact
                self.broke_down = True
                break
            self.v_hat[:, p + j + 1] = vector / norm
            if abs(self.projected_rhs[j + 1]) <= target:
                break
        self.steps = steps
        self.y = solve_triangular(rotated[:steps, :steps], self.projected_rhs[:steps], check_finite=False)

    def correction(self, basis_u: np.ndarray | None) -> np.ndarray:
        p, steps = self.recycled, self.steps
        update = self.v_hat[:, p : p + steps] @ self.y
        if basis_u is not None:
            update -= basis_u @ (self.coefficients[:p, :steps] @ self.y)
        return update

    def harmonic_ritz_space(self, basis_u: np.ndarray | None, dimension: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The new (C, U) from the harmonic Ritz vectors of A over span([U, V]), or None if degenerate.

        With W = [U D, V] (D scales U's columns to unit length, so that A W = V_hat G with
        G = [[D, B], [0, H]]), the harmonic Ritz pairs solve G^T G z = theta G^T V_hat^T W z. The k smallest
        |theta| give P (real and imaginary parts of complex pairs together); then Y = W P, G P = Q R,
        C = V_hat Q, U = Y R^{-1}.
        """
        from scipy.linalg import eig, qr, solve_triangular

        p, steps = self.recycled, self.steps
        g = np.zeros((p + steps + 1, p + steps))
        scales = np.empty(0)
        if basis_u is not None:
            scales = 1.0 / np.linalg.norm(basis_u, axis=0)
            g[:p, :p] = np.diag(scales)
        g[:, p:] = self.coefficients[: p + steps + 1, :steps]
        v_hat = self.v_hat[:, : p + steps + 1]
        # V_hat^T W = [[C^T U D, 0], [V^T U D, I]]: only the blocks with U need products of long vectors.
        cross = np.zeros((p + steps + 1, p + steps))
        if basis_u is not None:
            cross[:, :p] = (v_hat.T @ basis_u) * scales
        cross[p : p + steps, p:] = np.eye(steps)

        # With G = Q_G R_G, the pencil becomes the standard problem R_G^{-1} Q_G^T V_hat^T W z = z / theta,
        # conditioned like G rather than G^T G; the wanted smallest |theta| are its largest eigenvalues.
        q_g, r_g = qr(g, mode="economic", check_finite=False)
        reduced = solve_triangular(r_g, q_g.T @ cross, check_finite=False)
        inverse_values, eigenvectors = eig(reduced, check_finite=False)
        wanted = min(dimension, p + steps - 1)
        columns: list[np.ndarray] = []
        for index in np.argsort(-np.abs(inverse_values), kind="stable"):
            value, vector = inverse_values[index], eigenvectors[:, index]
            if len(columns) >= wanted or value == 0.0:
                break
            if abs(value.imag) <= 1e-12 * abs(value):
                columns.append(vector.real)
            elif value.imag > 0 and len(columns) + 2 <= wanted:  # one of each conjugate pair, both parts
                columns.extend((vector.real, vector.imag))
        if not columns:
            return None
        # A well-conditioned basis of the same span.
        selection = qr(np.column_stack(columns), mode="economic", check_finite=False)[0]

        q, triangle = qr(g @ selection, mode="economic", check_finite=False)
        if not _well_conditioned(triangle):
            return None
        basis_c = v_hat @ q
        # U = W P R^{-1}, with the small factor P R^{-1} formed first (one product of long vectors, not two).
        combination = selection @ _inverse_triangle(triangle)
        basis_u_new = self.v_hat[:, p : p + steps] @ combination[p:]
        if basis_u is not None:
            basis_u_new += basis_u @ (scales[:, None] * combination[:p])
        return basis_c, basis_u_new
