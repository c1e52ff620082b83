"""Geometric multigrid: CG preconditioned by a V-cycle on the grid hierarchy of a system that can be rediscretised.

Darcy's 5-point systems live on an n x n grid; with n - 1 even the grid coarsens to (n + 1) / 2 nodes per side by
keeping every other node (421 -> 211 -> 106). Each coarse operator is the same discretisation assembled from the
coefficient restricted to the coarse nodes by full weighting (rediscretisation; a Galerkin product P^T A P cost
more to set up per sample and saved 2 iterations of 12, measured at 421^2, and injection of the coefficient let
the iterations grow with the grid on rough coefficients). No analysis of the matrix is needed, which makes the
hierarchy cheaper to set up than algebraic multigrid for each new coefficient field; the interpolation depends
only on the grid size and is built once per size.

V-cycle: two damped-Jacobi sweeps (weight 0.8) before the coarse-grid correction and two after, so the cycle is a
symmetric positive definite operator as CG needs; bilinear interpolation P between levels and its transpose as
restriction (the matrices are h^2 times the operator, so in 2D P^T A_h P and the rediscretised A_2h have the
same scale); the coarsest level (where n - 1 turns odd, or below ``MIN_NODES``) is solved exactly by sparse LU.
CG's iterations then stay flat as the grid is refined (tests/test_solvers.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from sweeplab.datagen.solvers._krylov import preconditioned_cg
from sweeplab.datagen.solvers._system import LinearSystem

__all__ = ["MIN_NODES", "coarsens", "solve_gmg"]

_SMOOTHING_STEPS = 2
_JACOBI_WEIGHT = 0.8
MIN_NODES = 17  # a grid of fewer nodes a side is not coarsened further: the LU there costs little


def coarsens(system: LinearSystem) -> bool:
    """Whether ``system`` has a grid hierarchy: it can be rediscretised and its grid halves at least once."""
    if system.assemble is None or system.coefficient is None:
        return False
    nodes = system.coefficient.shape[0]
    return nodes % 2 == 1 and nodes >= MIN_NODES


def solve_gmg(system: LinearSystem, tolerance: float, max_iterations: int) -> tuple[np.ndarray, int]:
    """(solution, CG iterations) by CG with a geometric-multigrid V-cycle as preconditioner."""
    if not coarsens(system):
        raise ValueError(f"the gmg solver needs systems rediscretisable on an odd grid of at least {MIN_NODES} nodes")
    assert system.assemble is not None and system.coefficient is not None
    hierarchy = _Hierarchy(system.matrix.tocsr(), system.coefficient, system.assemble)
    return preconditioned_cg(system, hierarchy.v_cycle, tolerance, max_iterations, "GMG-CG")


class _Hierarchy:
    def __init__(self, matrix: Any, coefficient: np.ndarray, assemble: Any) -> None:
        from scipy.sparse.linalg import splu

        self.matrices = [matrix]
        self.interpolations = []
        while (nodes := coefficient.shape[0]) % 2 == 1 and nodes >= MIN_NODES:
            coefficient = _full_weighting(coefficient)
            self.interpolations.append(_interpolation((nodes + 1) // 2))
            self.matrices.append(assemble(coefficient).tocsr())
        self.weighted_inverse_diagonals = [_JACOBI_WEIGHT / m.diagonal() for m in self.matrices]
        # The symmetric ordering with diagonal pivots of the direct solver (see _direct): ~1.4x faster here.
        self.coarsest = splu(self.matrices[-1].tocsc(), permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})

    def v_cycle(self, residual: np.ndarray, level: int = 0) -> np.ndarray:
        if level == len(self.interpolations):
            return self.coarsest.solve(residual)
        matrix, inverse_diagonal = self.matrices[level], self.weighted_inverse_diagonals[level]
        correction = inverse_diagonal * residual
        for _ in range(_SMOOTHING_STEPS - 1):
            correction += inverse_diagonal * (residual - matrix @ correction)
        interpolation = self.interpolations[level]
        coarse_residual = interpolation.T @ (residual - matrix @ correction)
        correction += interpolation @ self.v_cycle(coarse_residual, level + 1)
        for _ in range(_SMOOTHING_STEPS):
            correction += inverse_diagonal * (residual - matrix @ correction)
        return correction


def _full_weighting(nodal: np.ndarray) -> np.ndarray:
    """Nodal values on the grid of every other node: the 3 x 3 weighted mean (1 2 1; 2 4 2; 1 2 1) / 16 around
    each interior coarse node, the values themselves on the boundary."""
    coarse = nodal[::2, ::2].copy()
    centre, before, after = slice(2, -1, 2), slice(1, -2, 2), slice(3, None, 2)
    coarse[1:-1, 1:-1] = (
        4 * nodal[centre, centre]
        + 2 * (nodal[before, centre] + nodal[after, centre] + nodal[centre, before] + nodal[centre, after])
        + nodal[before, before] + nodal[before, after] + nodal[after, before] + nodal[after, after]
    ) / 16  # fmt: skip
    return coarse


@cache
def _interpolation(coarse_nodes: int) -> Any:
    """Bilinear interpolation from the interior nodes of a ``coarse_nodes`` grid to those of the grid twice as
    fine, both row-major (the tensor product of the 1D hat-function interpolation)."""
    from scipy.sparse import coo_array, kron

    coarse_interior = coarse_nodes - 2
    fine_interior = 2 * (coarse_nodes - 1) - 1
    columns = np.repeat(np.arange(coarse_interior), 3)
    centres = 2 * np.arange(coarse_interior) + 1  # coarse interior node j sits on fine interior node 2j + 1
    rows = (centres[:, None] + np.array([-1, 0, 1])).ravel()
    values = np.tile([0.5, 1.0, 0.5], coarse_interior)
    one_d = coo_array((values, (rows, columns)), shape=(fine_interior, coarse_interior)).tocsr()
    return kron(one_d, one_d, format="csr")
