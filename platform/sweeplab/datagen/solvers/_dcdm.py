"""The Deep Conjugate Direction Method (Kaneda, Akar, Chen, Kim, Teran; ICML 2023): conjugate directions whose
search direction comes from a network trained to approximate the action of A^-1 on a residual.

The paper's iteration: q = f(r / ||r||); q is A-orthogonalised against the last two directions,
q <- q - sum_i (q . A p_i) / (p_i . A p_i) p_i; step alpha = (q . r) / (q . A q); x <- x + alpha q; the residual is
recomputed as b - A x (not updated by recurrence), and the iteration stops when ||r|| <= tolerance ||b||. Every
step minimises the A-norm error along q, so the error never grows; but with only two directions kept, a network
that is not close to A^-1 stalls (``solve_dcdm`` explains, BENCHMARKS.md measures). ``solve_dcdm`` therefore keeps
every direction by default and also steps along the residual; ``memory=2, with_residual=False`` is the paper's.

The network is a trained sweeplab model, named by an MLflow model URI in the data parameters. This package sits
below the one that reads MLflow (``serving``), so it does not resolve URIs itself: the caller that does (a study
run, ``sweeplab data``, the benchmark) installs a loader with ``direction_model_loader``, and a generator asks it
for the model once per generation with ``load_direction_model``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from sweeplab.datagen.solvers._system import ConvergenceError, LinearSystem

__all__ = [
    "PAPER_MEMORY",
    "DirectionModel",
    "direction_model_loader",
    "load_direction_model",
    "network_directions",
    "solve_dcdm",
]

DirectionModel = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(residual of the interior unknowns, row-major, unit norm; nodal coefficient of the system, n x n) -> search
direction of the interior unknowns."""

ModelLoader = Callable[[str], Any]
"""An MLflow model URI -> the trained network: a torch module mapping (batch, 2, n, n) = (residual embedded in the
nodal grid, coefficient) to (batch, 1, n, n)."""

_LOADER: ContextVar[ModelLoader | None] = ContextVar("dcdm_model_loader", default=None)

# The paper keeps the previous two directions (its network is trained for hours on a GPU).
PAPER_MEMORY = 2


@contextmanager
def direction_model_loader(loader: ModelLoader) -> Iterator[None]:
    """Within this block, ``load_direction_model`` resolves model URIs with ``loader``."""
    token = _LOADER.set(loader)
    try:
        yield
    finally:
        _LOADER.reset(token)


def load_direction_model(uri: str) -> DirectionModel:
    """The direction model the network at ``uri`` gives, loaded by the installed loader (its LookupError, for a
    URI that names no model, passes through)."""
    loader = _LOADER.get()
    if loader is None:
        raise RuntimeError(
            f"solver dcdm needs its model {uri!r} loaded from MLflow, which data generation does not read: generate "
            "through a study or `sweeplab data generate`, or call inside "
            "sweeplab.datagen.solvers.direction_model_loader(partial(sweeplab.serving.load_model, tracking_uri=...))"
        )
    return network_directions(loader(uri))


def network_directions(network: Any) -> DirectionModel:
    """The direction model of a trained DCDM network (a torch module on the nodal grid, float32)."""
    import torch

    def direction(residual: np.ndarray, coefficient: np.ndarray) -> np.ndarray:
        nodes = coefficient.shape[0]
        grid = np.zeros((1, 2, nodes, nodes), dtype=np.float32)
        grid[0, 0, 1:-1, 1:-1] = residual.reshape(nodes - 2, nodes - 2)
        grid[0, 1] = coefficient
        with torch.no_grad():
            output = network(torch.from_numpy(grid))
        return output[0, 0, 1:-1, 1:-1].double().numpy().ravel()

    return direction


def solve_dcdm(
    system: LinearSystem,
    directions: DirectionModel,
    tolerance: float,
    max_iterations: int,
    memory: int | None = None,
    with_residual: bool = True,
) -> tuple[np.ndarray, int]:
    """(solution, iterations) of a symmetric positive definite system on a nodal grid, by DCDM with the
    directions of ``directions``; ConvergenceError when it stalls or runs out of iterations. ``resolve_method``
    has checked that the system fits.

    Two safeguards, not the paper's, on by default: ``memory`` (None: every direction) is how many previous
    directions the new one is A-orthogonalised against, and ``with_residual`` makes each step minimise the A-norm
    error over span{q, r} rather than along q alone (one more sparse product per iteration). A network trained for
    minutes on a CPU, with the paper's two directions, stalls within a few steps on residuals unlike its training
    data: its direction, once A-orthogonalised, is nearly A-orthogonal to the error, so the residual, and with it
    the next direction, stops changing (measured: no convergence to 1e-8 in 500 iterations on 33 x 33 Darcy, where
    keeping every direction takes 20-27). With r in the step, each step does at least as well as steepest descent,
    and a network that adds nothing gives CG (the identity network gives CG's iterations). Keeping every
    direction costs O(k n) per iteration and 2 k vectors of memory after k iterations.
    ``memory=PAPER_MEMORY, with_residual=False`` is the paper's iteration.
    """
    assert system.coefficient is not None
    matrix = system.matrix.tocsr()
    rhs = system.rhs
    target = tolerance * np.linalg.norm(rhs)
    solution = np.zeros_like(rhs, dtype=np.float64)
    residual = rhs.astype(np.float64)
    previous: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)  # (p, A p, p . A p)
    for iteration in range(1, max_iterations + 1):
        candidates = [directions(residual / np.linalg.norm(residual), system.coefficient)]
        if with_residual:
            candidates.append(residual.copy())
        for index, candidate in enumerate(candidates):
            for p, product, curvature in previous:
                candidate = candidate - (candidate @ product) / curvature * p
            candidates[index] = candidate
        basis = np.stack(candidates, axis=1)
        products = np.stack([matrix @ candidate for candidate in candidates], axis=1)
        # The step p = basis c minimising the A-norm error: (basis^T A basis) c = basis^T r, least squares where
        # the candidates are (nearly) parallel.
        coefficients = np.linalg.lstsq(basis.T @ products, basis.T @ residual, rcond=1e-12)[0]
        direction, product = basis @ coefficients, products @ coefficients
        curvature = float(direction @ product)
        if not curvature > 0.0:  # no descent: a network output of zeros, say
            raise ConvergenceError(f"DCDM stalled at iteration {iteration}: the direction makes no progress")
        solution += direction
        residual = rhs - matrix @ solution
        if np.linalg.norm(residual) <= target:
            return solution, iteration
        previous.append((direction, product, curvature))
    raise ConvergenceError(f"DCDM did not reach tolerance {tolerance} in {max_iterations} iterations")
