"""2D Darcy flow, the FNO recipe (Li et al. 2020): coefficient a -> solution u of -div(a grad u) = f, u = 0 on
the boundary of (0,1)^2.

Each sample draws a Gaussian random field g on the fine node grid (see ``_grf``), maps it to a coefficient a
(threshold 12/3 or exp(g)), solves with second-order finite differences and a linear solver from ``solvers``
(sparse direct by default), and keeps every k-th node of a and u. Sample i draws only from its own random
stream (seed, i), so the data do not depend on how the samples are spread over processes. A solver that
carries information from one system to the next (``skr``) solves fixed blocks of consecutive samples together,
so its data do not depend on the processes either; they differ from a lone solve of each sample
(``darcy_sample``) within the tolerance.

Only numpy and pydantic are imported at module level (``solvers`` too imports only numpy): scipy and pyamg are
imported where they are used, torch never.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from sweeplab._cpus import usable_cpus
from sweeplab.data._splits import ResolutionArrays, SampleArrays, check_resolutions, multi_resolution_field
from sweeplab.datagen._grf import sample_gaussian_random_field
from sweeplab.datagen.solvers import (
    DirectionModel,
    LinearSystem,
    SolverMethod,
    load_direction_model,
    solve_sequence,
)
from sweeplab.record import model_uri_problem

__all__ = ["DarcyParams", "darcy_sample", "darcy_samples", "darcy_system", "generate_darcy", "solve_darcy"]

_log = logging.getLogger(__name__)

# Below this much estimated serial work a pool does not pay: starting it costs 2-3 s (measured, 2 workers;
# each worker imports numpy, pydantic and scipy). 250 samples at 141^2 on 16 cores: 16.9 s serial, 9.7 s with
# 2 workers, 3.7 s with 16; 1200 samples at 421^2: ~1500 s serial, 95 s with 16 workers.
_MIN_SERIAL_SECONDS_FOR_POOL = 4.0
# Progress is reported only for runs longer than this.
_QUIET_SECONDS = 2.0


class DarcyParams(BaseModel):
    """Parameters of the Darcy data set; fields marked ``affects_output: False`` stay out of the cache key."""

    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(1000, ge=1, description="Number of training samples (samples 0 .. n_train-1).")
    n_val: int = Field(100, ge=1, description="Number of validation samples (they follow the training samples).")
    n_test: int = Field(100, ge=1, description="Number of test samples (they follow the validation samples).")
    resolution: int = Field(85, ge=2, description="Output grid size s: s x s nodes subsampled from the fine grid.")
    fine_resolution: int = Field(421, ge=3, description="Nodes per side of the grid the PDE is solved on.")
    alpha: float = Field(2.0, gt=1.0, description="Smoothness exponent of the random field's covariance.")
    tau: float = Field(3.0, gt=0.0, description="Inverse length scale of the random field's covariance.")
    coefficient: Literal["threshold", "lognormal"] = Field(
        "threshold",
        description="How the field g becomes a: threshold (a_high where g >= 0, else a_low) or exp(g).",
    )
    a_high: float = Field(12.0, gt=0.0, description="Coefficient where g >= 0 (threshold coefficient only).")
    a_low: float = Field(3.0, gt=0.0, description="Coefficient where g < 0 (threshold coefficient only).")
    seed: int = Field(0, ge=0, description="Root seed; sample i draws from its own stream (seed, i).")
    solver: SolverMethod = Field(
        "direct",
        description="Linear solver: direct (sparse LU), amg (AMG-preconditioned CG), gmres (GMRES(40)), skr "
        "(sorting + GCRO-DR Krylov recycling over blocks of samples), dcdm (conjugate directions from a trained "
        "network, dcdm_model) or auto (LU below ~16,000 unknowns, AMG above: the faster one, measured). gmres and "
        "skr have no preconditioner: slow beyond small grids.",
    )
    dcdm_model: str | None = Field(
        None,
        description="The trained DCDM network the dcdm solver takes its directions from, as an MLflow model URI: "
        "runs:/<run id>/mlflow_model, models:/<study>@best, ... (in the study's tracking store).",
        json_schema_extra={"identity_omits_default": True},
    )
    tolerance: float = Field(
        1e-10,
        gt=0.0,
        lt=1.0,
        description="Relative residual the iterative solvers reach, ||f - A u|| / ||f||; direct is exact.",
    )
    test_resolutions: list[int] = multi_resolution_field()
    workers: int | None = Field(
        None,
        ge=1,
        description="Processes to generate with; None = all available cores. Does not change the data.",
        json_schema_extra={"affects_output": False},
    )

    @field_validator("tolerance")
    @classmethod
    def _tolerance_reachable(cls, tolerance: float, info: ValidationInfo) -> float:
        # Rounding alone leaves a relative residual of about eps (n - 1)^2 / 8 on the n x n system, even for its
        # exact solution (measured with sparse LU: 1e2 eps at n = 29, 2e4 eps at n = 421): an iterative solver
        # asked for less never stops. The bound keeps a factor of 8 of headroom above that floor.
        solver, fine = info.data.get("solver"), info.data.get("fine_resolution")
        if solver in (None, "direct") or fine is None:
            return tolerance
        floor = float(np.finfo(np.float64).eps) * (fine - 1) ** 2
        if tolerance < floor:
            raise ValueError(
                f"{tolerance:g} is below what float64 can reach on a {fine} x {fine} grid with solver {solver}: "
                f"use at least {floor:.1e}"
            )
        return tolerance

    @field_validator("dcdm_model")
    @classmethod
    def _model_uri_well_formed(cls, uri: str | None) -> str | None:
        problem = model_uri_problem(uri) if uri is not None else None
        if problem is not None:
            raise ValueError(problem)
        return uri

    @model_validator(mode="after")
    def _dcdm_model_named(self) -> DarcyParams:
        if self.solver == "dcdm" and self.dcdm_model is None:
            raise ValueError("solver dcdm needs dcdm_model: the MLflow URI of a trained dcdm model")
        if self.solver != "dcdm" and self.dcdm_model is not None:
            raise ValueError(f"dcdm_model applies to solver dcdm only, not {self.solver}")
        return self

    @model_validator(mode="after")
    def _resolutions_divide_fine_grid(self) -> DarcyParams:
        check_resolutions(
            self.resolution,
            self.test_resolutions,
            lambda size: (self.fine_resolution - 1) % (size - 1) == 0,
            f"fine_resolution {self.fine_resolution}: (fine_resolution - 1) must be a multiple of (resolution - 1), "
            f"e.g. fine_resolution 421 allows resolution 421, 211, 141, 106, 85, 61, 43, 36, 29, ...",
        )
        return self

    @property
    def subsampling_step(self) -> int:
        return self.subsampling_step_to(self.resolution)

    def subsampling_step_to(self, size: int) -> int:
        return (self.fine_resolution - 1) // (size - 1)


def darcy_system(a: np.ndarray, f: float | np.ndarray = 1.0) -> LinearSystem:
    """The finite-difference system of -div(a grad u) = f on (0,1)^2, u = 0 on the boundary.

    ``a`` holds the coefficient at the n x n nodes x_i = i / (n-1) (boundary included; axis 0 and axis 1 are
    the two coordinates, the operator treats them alike); ``f`` is a constant or nodal values of the same
    shape (only interior values are used). Second-order 5-point finite differences with the coefficient on
    each cell face taken as the mean of its two nodes; the unknowns are the interior nodes, row-major. The
    matrix is symmetric positive definite; the system's parameter field is ``a``.
    """
    a = np.asarray(a, dtype=np.float64)
    matrix = darcy_matrix(a)
    spacing = 1.0 / (a.shape[0] - 1)
    source = np.broadcast_to(np.asarray(f, dtype=np.float64), a.shape)[1:-1, 1:-1]
    return LinearSystem(
        matrix=matrix,
        rhs=spacing**2 * source.ravel(),
        parameter=a,
        definite=True,
        coefficient=a,
        assemble=darcy_matrix,
    )


def darcy_matrix(a: np.ndarray) -> Any:
    """The matrix of ``darcy_system`` (h^2 times the operator, interior unknowns row-major) for nodal ``a``."""
    from scipy.sparse import diags_array

    a = np.asarray(a, dtype=np.float64)
    n = a.shape[0]
    if a.ndim != 2 or a.shape[1] != n or n < 3:
        raise ValueError(f"a must be a square grid of at least 3 x 3 nodes, got shape {a.shape}")
    interior = n - 2
    # Face coefficients: faces_0[i, j] joins nodes (i, j), (i+1, j); faces_1[i, j] joins (i, j), (i, j+1).
    faces_0 = 0.5 * (a[:-1, :] + a[1:, :])
    faces_1 = 0.5 * (a[:, :-1] + a[:, 1:])
    # Neighbours are 1 apart along axis 1, `interior` apart along axis 0.
    diagonal = faces_0[:-1, 1:-1] + faces_0[1:, 1:-1] + faces_1[1:-1, :-1] + faces_1[1:-1, 1:]
    coupling_0 = -faces_0[1:-1, 1:-1]
    coupling_1 = np.zeros((interior, interior))
    coupling_1[:, :-1] = -faces_1[1:-1, 1:-1]  # the last node of a row has no right-hand interior neighbour
    coupling_1 = coupling_1.ravel()[:-1]
    coupling_0 = coupling_0.ravel()
    return diags_array(
        [diagonal.ravel(), coupling_1, coupling_1, coupling_0, coupling_0],
        offsets=[0, 1, -1, interior, -interior],
        format="csr",
    )


def _embed(a: np.ndarray, interior_values: np.ndarray) -> np.ndarray:
    """Nodal values on the grid of ``a``: ``interior_values`` inside, exactly zero on the boundary."""
    solution = np.zeros(np.shape(a))
    interior = solution.shape[0] - 2
    solution[1:-1, 1:-1] = interior_values.reshape(interior, interior)
    return solution


def solve_darcy(
    a: np.ndarray, f: float | np.ndarray = 1.0, solver: SolverMethod = "direct", tolerance: float = 1e-10
) -> np.ndarray:
    """Solve -div(a grad u) = f on (0,1)^2 with u = 0 on the boundary (the system of ``darcy_system``).

    Returns u at the nodes of ``a``, exactly zero on the boundary. ``solver`` is a method of
    ``sweeplab.datagen.solvers``; ``tolerance`` bounds the relative residual of the iterative ones.
    """
    (solution,), _ = solve_sequence([darcy_system(a, f)], solver, tolerance)
    return _embed(a, solution)


def _coefficient_from_field(field: np.ndarray, params: DarcyParams) -> np.ndarray:
    if params.coefficient == "threshold":
        return np.where(field >= 0.0, params.a_high, params.a_low)
    return np.exp(field)


# Consecutive samples solved in one solve_sequence call by a solver that carries information from system to
# system (skr sorts and recycles within a block); other solvers solve each sample alone. Fixed, so that the
# data do not depend on the number of workers. 25 samples at 421^2 hold ~0.3 GB of matrices.
_RECYCLING_BLOCK = 25


def _block_size(params: DarcyParams) -> int:
    return _RECYCLING_BLOCK if params.solver == "skr" else 1


def _directions(params: DarcyParams) -> DirectionModel | None:
    """The dcdm solver's trained network, loaded once per generation (None for the other solvers)."""
    return load_direction_model(params.dcdm_model) if params.dcdm_model is not None else None


def _solved_samples(
    params: DarcyParams,
    indices: Sequence[int],
    resolutions: Sequence[int],
    directions: DirectionModel | None = None,
) -> list[ResolutionArrays]:
    """Samples ``indices``, solved together, each as (a, u) shaped (1, 1, s, s), float32, at every grid size s
    in ``resolutions`` (all subsampled from the same fine solve); ``directions`` for the dcdm solver."""
    coefficients = []
    for index in indices:
        rng = np.random.default_rng(np.random.SeedSequence(params.seed, spawn_key=(index,)))
        field = sample_gaussian_random_field(rng, params.fine_resolution, params.alpha, params.tau)
        coefficients.append(_coefficient_from_field(field, params))
    systems = [darcy_system(a) for a in coefficients]
    solutions, _ = solve_sequence(systems, params.solver, params.tolerance, directions=directions)
    steps = {size: params.subsampling_step_to(size) for size in resolutions}
    samples = []
    for a, u in zip(coefficients, solutions, strict=True):
        nodal_u = _embed(a, u)
        samples.append(
            {
                size: (
                    a[None, None, ::step, ::step].astype(np.float32),
                    nodal_u[None, None, ::step, ::step].astype(np.float32),
                )
                for size, step in steps.items()
            }
        )
    return samples


def darcy_samples(params: DarcyParams, indices: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Samples ``indices`` of the data set, solved together: (a, u) on the output grid, float32, (s, s) each."""
    return [
        (sample[params.resolution][0][0, 0], sample[params.resolution][1][0, 0])
        for sample in _solved_samples(params, indices, [params.resolution], _directions(params))
    ]


def darcy_sample(params: DarcyParams, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``index`` of the data set, solved alone: (a, u) on the output grid, float32, each shaped (s, s)."""
    return darcy_samples(params, [index])[0]


def _samples(params: DarcyParams, arrays: SampleArrays) -> Iterator[tuple[int, ResolutionArrays]]:
    """(index, sample) for samples 0 .. total-1 in order, each at the grid sizes ``arrays`` wants it; the first
    block is timed in this process to decide whether a pool pays."""
    # Imported before timing, so that the estimate measures the solve, not the import.
    import scipy.fft
    import scipy.sparse.linalg  # noqa: F401

    count = arrays.total
    size = _block_size(params)
    blocks = [range(start, min(start + size, count)) for start in range(0, count, size)]
    directions = _directions(params)
    started = time.perf_counter()
    first = _solved_samples(params, blocks[0], arrays.resolutions_for(blocks[0]), directions)
    seconds_per_sample = (time.perf_counter() - started) / len(blocks[0])
    yield from zip(blocks[0], first, strict=True)

    remaining = blocks[1:]
    remaining_samples = count - len(blocks[0])
    workers = min(params.workers or usable_cpus(), len(remaining))
    # DCDM's network stays in this process: the pool's workers could not reach the model loader installed here,
    # and torch runs its convolutions on threads of its own.
    serial = directions is not None or seconds_per_sample * remaining_samples < _MIN_SERIAL_SECONDS_FOR_POOL
    if workers <= 1 or serial:
        for block in remaining:
            solved = _solved_samples(params, block, arrays.resolutions_for(block), directions)
            yield from zip(block, solved, strict=True)
        return

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # A few chunks per worker balance the load; chunks of at most ~2 s keep the progress report moving.
    seconds_per_block = seconds_per_sample * size
    chunksize = max(1, min(math.ceil(len(remaining) / (4 * workers)), int(2.0 / seconds_per_block)))
    # forkserver, not fork: the caller may already run threads (torch, MLflow), and forking those is unsafe.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        resolutions = [arrays.resolutions_for(block) for block in remaining]
        solved = pool.map(partial(_solved_samples, params), remaining, resolutions, chunksize=chunksize)
        for block, samples in zip(remaining, solved, strict=True):
            yield from zip(block, samples, strict=True)


@contextmanager
def _progress(total: int, description: str) -> Iterator[Callable[[], None]]:
    """Yields ``advance()``. Silent for the first few seconds; then a rich bar if stderr is a terminal,
    otherwise an INFO log line at every 10%.
    """
    started = time.perf_counter()
    done = 0
    bar = None
    bar_task = None
    next_log_fraction = 0.1

    def advance() -> None:
        nonlocal done, bar, bar_task, next_log_fraction
        done += 1
        if time.perf_counter() - started < _QUIET_SECONDS:
            return
        if sys.stderr.isatty():
            if bar is None:
                from rich.console import Console
                from rich.progress import Progress

                bar = Progress(console=Console(stderr=True))
                bar.start()
                bar_task = bar.add_task(description, total=total)
            bar.update(bar_task, completed=done)
        elif done / total >= next_log_fraction or done == total:
            _log.info("%s: %d/%d samples, %.0f s", description, done, total, time.perf_counter() - started)
            next_log_fraction = math.floor(done / total * 10 + 1) / 10

    try:
        yield advance
    finally:
        if bar is not None:
            bar.stop()


def generate_darcy(params: DarcyParams) -> dict[str, np.ndarray]:
    """The data set: x_{train,val,test} = a and y_{train,val,test} = u, float32, shaped (samples, 1, s, s);
    with ``test_resolutions``, also x_test_<r>/y_test_<r>: the test samples subsampled to r x r instead.

    Runs long enough to pay for it use a pool of ``params.workers`` processes (forkserver), so a script
    calling this needs the ``if __name__ == "__main__":`` guard, as with any non-fork multiprocessing;
    ``workers=1`` never starts processes. The result does not depend on the number of workers.
    """
    split_sizes = {"train": params.n_train, "val": params.n_val, "test": params.n_test}
    arrays = SampleArrays(split_sizes, params.resolution, params.test_resolutions)
    description = f"Darcy {params.fine_resolution}^2 -> {params.resolution}^2"
    with _progress(arrays.total, description) as advance:
        for index, sample in _samples(params, arrays):
            arrays.put(range(index, index + 1), sample)
            advance()
    return arrays.splits()
