"""The shared vocabulary of the solvers: a linear system, and the error of a solve that did not converge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ConvergenceError", "LinearSystem"]


class ConvergenceError(RuntimeError):
    """An iterative solver did not reach the requested tolerance within its iteration budget."""


@dataclass(frozen=True)
class LinearSystem:
    """One system ``matrix @ x = rhs``; ``parameter`` is the field it was assembled from (SKR sorts by it)."""

    matrix: Any  # a square scipy sparse array
    rhs: np.ndarray
    parameter: np.ndarray
    definite: bool  # symmetric positive definite: AMG-CG applies
    # A system assembled on a square grid from a nodal coefficient can be rediscretised on coarser grids
    # (geometric multigrid): the coefficient, and the function that assembles the matrix from a coefficient.
    coefficient: np.ndarray | None = None
    assemble: Callable[[np.ndarray], Any] | None = None

    @property
    def unknowns(self) -> int:
        return self.rhs.shape[0]
