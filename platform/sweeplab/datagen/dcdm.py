"""Training data for the Deep Conjugate Direction Method (Kaneda et al., ICML 2023) on Darcy/Poisson systems.

Each sample i draws, from its own random stream (seed, i), a coefficient a on the n x n node grid (the Darcy
recipe's threshold or lognormal field, or a = 1: Poisson, the paper's setting) and a residual-like right-hand
side b for the system A of ``darcy_system(a)``. As in the paper, b is a random combination of Ritz vectors of A:
``ritz_vectors`` Lanczos steps (full reorthogonalisation) from a random start give m Ritz pairs; b = sum_i c_i q_i
with the Ritz values ascending and c_i ~ 9 N(0, 1) for the lower half of the spectrum (plus ``m / 20``), N(0, 1)
for the rest (the paper's 90/10 weighting towards the smooth modes, which CG leaves behind longest), normalised
to unit norm. The paper trains on one fixed matrix per resolution; here each sample has its own coefficient, so
held-out samples test the network on unseen matrices.

x = (b embedded in the nodal grid, zero on the boundary; a), y = A^-1 b embedded (sparse LU), float32:
x (samples, 2, n, n), y (samples, 1, n, n). The task ``dcdm`` trains on them with the paper's loss. Only numpy and
pydantic are imported at module level.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sweeplab.data._splits import split_in_order
from sweeplab.datagen._grf import sample_gaussian_random_field
from sweeplab.datagen.darcy import darcy_system
from sweeplab.datagen.solvers import solve_sequence

__all__ = ["DcdmDarcyParams", "dcdm_sample", "generate_dcdm_darcy", "ritz_vectors"]


class DcdmDarcyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(2000, ge=1, description="Training right-hand sides (each with its own coefficient).")
    n_val: int = Field(200, ge=1, description="Validation samples (held-out coefficients).")
    n_test: int = Field(200, ge=1, description="Test samples (held-out coefficients).")
    resolution: int = Field(65, ge=5, description="Nodes per side n: (n - 2)^2 unknowns.")
    coefficient: Literal["threshold", "lognormal", "constant"] = Field(
        "threshold", description="Darcy's threshold (a_high/a_low) or exp(g) coefficient, or a = 1 (Poisson)."
    )
    alpha: float = Field(2.0, gt=1.0, description="Smoothness exponent of the random field's covariance.")
    tau: float = Field(3.0, gt=0.0, description="Inverse length scale of the random field's covariance.")
    a_high: float = Field(12.0, gt=0.0, description="Coefficient where g >= 0 (threshold coefficient only).")
    a_low: float = Field(3.0, gt=0.0, description="Coefficient where g < 0 (threshold coefficient only).")
    ritz_vectors: int = Field(64, ge=2, description="Lanczos steps m: the Ritz vectors b is combined from.")
    seed: int = Field(0, ge=0, description="Root seed; sample i draws from its own stream (seed, i).")


def ritz_vectors(matrix: object, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(Ritz values ascending, Ritz vectors as columns) of symmetric ``matrix`` after ``steps`` Lanczos steps with
    full reorthogonalisation from a random start (fewer if the Krylov space is exhausted)."""
    size = matrix.shape[0]  # type: ignore[attr-defined]
    steps = min(steps, size)
    basis = np.zeros((size, steps))
    diagonal, off_diagonal = np.zeros(steps), np.zeros(steps)
    vector = rng.standard_normal(size)
    vector /= np.linalg.norm(vector)
    for step in range(steps):
        basis[:, step] = vector
        product = matrix @ vector  # type: ignore[operator]
        diagonal[step] = vector @ product
        product -= basis[:, : step + 1] @ (basis[:, : step + 1].T @ product)  # twice is enough (Kahan)
        product -= basis[:, : step + 1] @ (basis[:, : step + 1].T @ product)
        off_diagonal[step] = np.linalg.norm(product)
        if off_diagonal[step] < 1e-12 * abs(diagonal[step]):
            steps = step + 1
            break
        vector = product / off_diagonal[step]
    tridiagonal = (
        np.diag(diagonal[:steps]) + np.diag(off_diagonal[: steps - 1], 1) + np.diag(off_diagonal[: steps - 1], -1)
    )
    values, vectors = np.linalg.eigh(tridiagonal)
    return values, basis[:, :steps] @ vectors


def dcdm_sample(params: DcdmDarcyParams, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample ``index``: (coefficient a, n x n; right-hand side b of the interior unknowns; A^-1 b)."""
    rng = np.random.default_rng(np.random.SeedSequence(params.seed, spawn_key=(index,)))
    n = params.resolution
    if params.coefficient == "constant":
        a = np.ones((n, n))
    else:
        field = sample_gaussian_random_field(rng, n, params.alpha, params.tau)
        a = np.where(field >= 0.0, params.a_high, params.a_low) if params.coefficient == "threshold" else np.exp(field)
    system = darcy_system(a)
    _, vectors = ritz_vectors(system.matrix, params.ritz_vectors, rng)
    count = vectors.shape[1]
    weights = rng.standard_normal(count)
    weights[: count // 2 + count // 20] *= 9.0
    rhs = vectors @ weights
    rhs /= np.linalg.norm(rhs)
    (solution,), _ = solve_sequence([dataclasses.replace(system, rhs=rhs)], "direct")
    return a, rhs, solution


def generate_dcdm_darcy(params: DcdmDarcyParams) -> dict[str, np.ndarray]:
    """x_{train,val,test} = (b, a) shaped (samples, 2, n, n) and y = A^-1 b shaped (samples, 1, n, n), float32."""
    split_sizes = {"train": params.n_train, "val": params.n_val, "test": params.n_test}
    total, n = sum(split_sizes.values()), params.resolution
    inputs = np.zeros((total, 2, n, n), dtype=np.float32)
    outputs = np.zeros((total, 1, n, n), dtype=np.float32)
    for index in range(total):
        a, rhs, solution = dcdm_sample(params, index)
        inputs[index, 0, 1:-1, 1:-1] = rhs.reshape(n - 2, n - 2)
        inputs[index, 1] = a
        outputs[index, 0, 1:-1, 1:-1] = solution.reshape(n - 2, n - 2)
    return split_in_order(inputs, outputs, split_sizes)
