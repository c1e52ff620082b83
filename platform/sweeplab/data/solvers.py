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
    "solve_sequence",
]

SolverMethod = Literal["direct", "amg", "gmres", "skr", "auto"]
SOLVER_METHODS: tuple[str, ...] = get_args(SolverMethod)

# `auto` takes AMG-CG from this many unknowns on (symmetric positive definite systems only). Measured with
# bench/datagen.py on 2 cores, one BLAS thread, Darcy coefficients: see choose_method.
_AMG_FROM_UNKNOWNS = 40_000


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

    Measured (bench/datagen.py, 2 shared cores, one BLAS thread): sparse LU beats everything up to ~10^4
    unknowns (Darcy n = 6400: direct ~20x faster than GMRES(40), and AMG's setup costs more than the LU); for
    Darcy on the 421^2 grid (175,561 unknowns) AMG-CG to 1e-10 takes ~0.6x the time of the LU. The Krylov
    methods without preconditioner never win in 2D, recycling or not. AMG needs a definite matrix, so
    indefinite systems (Helmholtz) always go to the LU.
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
    if method not in SOLVER_METHODS:
        raise ValueError(f"unknown solver {method!r}; choose one of {', '.join(SOLVER_METHODS)}")
    if not 0.0 < tolerance < 1.0:
        raise ValueError(f"tolerance must lie in (0, 1), got {tolerance}")
    if method == "auto":
        method = choose_method(max((s.unknowns for s in systems), default=0), all(s.definite for s in systems))
    if method == "amg" and not all(s.definite for s in systems):
        raise ValueError("the amg solver (AMG-preconditioned CG) needs symmetric positive definite systems")

    order = greedy_order([s.parameter for s in systems], group_size) if method == "skr" and sort else None
    if order is None:
        order = np.arange(len(systems))
    solutions: list[np.ndarray] = [np.empty(0)] * len(systems)
    iterations = np.zeros(len(systems), dtype=np.int64)
    started = time.perf_counter()
    with _single_threaded_blas():
        recycler = _GcroDr(restart, recycle_dimension) if method == "skr" else None
        for index in order:
            system = systems[index]
            if method == "direct":
                solutions[index] = _solve_direct(system)
            elif method == "amg":
                solutions[index], iterations[index] = _solve_amg(system, tolerance, max_iterations)
            elif method == "gmres":
                solutions[index], iterations[index] = _solve_gmres(system, tolerance, restart, max_iterations)
            else:
                assert recycler is not None
                solutions[index], iterations[index] = recycler.solve(
                    system.matrix, system.rhs, tolerance, max_iterations
                )
    seconds = time.perf_counter() - started
    return solutions, SolveStats(method=method, iterations=iterations, seconds=seconds, order=order)


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
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
    # Classical (Ruge-Stueben) coarsening: on these scalar 2D diffusion matrices it sets up ~2.5x faster than
    # smoothed aggregation and needs a similar number of CG iterations (measured at 421^2, 12 vs 14).
    preconditioner = pyamg.ruge_stuben_solver(matrix).aspreconditioner(cycle="V")
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
        from scipy.linalg import qr, solve_triangular

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
            image, triangle = qr(np.asarray(matrix @ kept), mode="economic")
            iterations += kept.shape[1]
            if _well_conditioned(triangle):
                basis_c = np.asfortranarray(image)
                basis_u = solve_triangular(triangle, kept.T, trans="T").T

        while True:
            if basis_c is not None:
                assert basis_u is not None
                coefficients = basis_c.T @ residual
                solution += basis_u @ coefficients
                residual -= basis_c @ coefficients
            residual_norm = np.linalg.norm(residual)
            if residual_norm <= target:
                break
            if iterations >= max_iterations:
                raise ConvergenceError(
                    f"GCRO-DR({self.restart}, {self.recycle_dimension}) did not reach tolerance {tolerance} "
                    f"in {iterations} iterations"
                )
            cycle = _Cycle(matrix, residual, residual_norm, basis_c, self.restart, target)
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


def _well_conditioned(triangle: np.ndarray) -> bool:
    diagonal = np.abs(np.diag(triangle))
    return bool(diagonal.size) and diagonal.min() > 1e-12 * diagonal.max()


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
            norm_before = np.linalg.norm(vector)
            columns = self.v_hat[:, : p + j + 1]
            coefficients = columns.T @ vector
            vector -= columns @ coefficients
            norm = np.linalg.norm(vector)
            if norm < 0.7 * norm_before:  # much cancelled: one more pass restores orthogonality
                correction = columns.T @ vector
                vector -= columns @ correction
                coefficients += correction
                norm = np.linalg.norm(vector)
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
        from scipy.linalg import solve_triangular

        self.y = solve_triangular(rotated[:steps, :steps], self.projected_rhs[:steps])

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

        eigenvalues, eigenvectors = eig(g.T @ g, g.T @ cross)
        magnitudes = np.abs(eigenvalues)
        magnitudes[~np.isfinite(magnitudes)] = np.inf
        wanted = min(dimension, p + steps - 1)
        columns: list[np.ndarray] = []
        for index in np.argsort(magnitudes, kind="stable"):
            if len(columns) >= wanted or not np.isfinite(magnitudes[index]):
                break
            value, vector = eigenvalues[index], eigenvectors[:, index]
            if abs(value.imag) <= 1e-12 * abs(value):
                columns.append(vector.real)
            elif value.imag > 0 and len(columns) + 2 <= wanted:  # one of each conjugate pair, both parts
                columns.extend((vector.real, vector.imag))
        if not columns:
            return None
        selection = qr(np.column_stack(columns), mode="economic")[0]  # a well-conditioned basis of the same span

        kept = self.v_hat[:, p : p + steps] @ selection[p:]
        if basis_u is not None:
            kept += basis_u @ (scales[:, None] * selection[:p])
        q, triangle = qr(g @ selection, mode="economic")
        if not _well_conditioned(triangle):
            return None
        basis_c = np.asfortranarray(v_hat @ q)
        basis_u_new = solve_triangular(triangle, kept.T, trans="T").T
        return basis_c, basis_u_new
