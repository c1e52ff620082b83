"""Semilinear 1D PDEs for prediction and data assimilation (Singh, Borsoi, Erdogmus, Imbiriba, "Learning semilinear
neural operators: a unified recursive framework for prediction and data assimilation", ICLR 2024): trajectories
of the Korteweg-de Vries and Kuramoto-Sivashinsky equations plus sparse, noisy, irregular observations of them.

    KdV:  u_t + 6 u u_x + u_xxx = 0,          u_t = i k^3 u_hat - 3 i k (u^2)_hat  in Fourier space
    KS:   u_t + u u_x + u_xx + u_xxxx = 0,     u_t = (k^2 - k^4) u_hat - i k / 2 (u^2)_hat

periodic on [0, ``domain_length``). Solver: Fourier pseudo-spectral on ``fine_resolution`` points, ETDRK4 (Cox &
Matthews 2002) with the phi functions as contour means over a full circle (Kassam & Trefethen 2005; the KdV
linear part is imaginary, so the real-axis shortcut of the Burgers solver does not apply), the quadratic term
dealiased by the 2/3 rule, float64, vectorised over samples. Both conserve the mean exactly (the nonlinear term
is a derivative); KdV also conserves the integral of u^2 (checked to solver accuracy in tests/test_semilinear.py,
with the one-soliton speed and the KS linear growth rates k^2 - k^4).

Initial data: KdV, a sum of ``n_solitons`` solitons (c / 2) sech^2(sqrt(c) / 2 (x - x0)), speeds c uniform in
[``min_speed``, ``max_speed``], centres uniform (not an exact multi-soliton; they interact and separate); KS, a
random field of the lowest ``initial_modes`` Fourier modes with standard deviation ``initial_amplitude``, run for
``warmup`` time units so that the trajectory is on the chaotic attractor (the textbook setting L = 32 pi).

Observations (the same draw for every model): ``sensors`` grid points per sample, a random subset in a random
order (the first m of them are a random subset of m: models are scored at fewer sensors by dropping the rest);
each snapshot after the first is observed with probability ``observation_probability`` (irregular times); noise
N(0, (``noise_level`` x the trajectory's RMS)^2).

Stored (resolution n, horizon H): y = the H snapshots after the initial one, (samples, H, n); x = (samples,
1 + 2H, n): channel 0 the initial state, channels 1 .. H the observation values (0 where there is none),
channels H + 1 .. 2H the sensor ranks 1 .. sensors where observed (0 where not).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sweeplab.data._splits import ResolutionArrays
from sweeplab.datagen._batched import generate_in_batches, sample_rng
from sweeplab.datagen._spectral import etdrk4_solve

__all__ = [
    "KdVParams",
    "KuramotoSivashinskyParams",
    "etdrk4_solve",
    "generate_kdv",
    "generate_kuramoto_sivashinsky",
    "kdv_operators",
    "kdv_soliton",
    "kuramoto_sivashinsky_operators",
    "observe",
]


class _TrajectoryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(512, ge=1, description="Training trajectories.")
    n_val: int = Field(64, ge=1, description="Validation trajectories.")
    n_test: int = Field(64, ge=1, description="Test trajectories.")
    resolution: int = Field(64, ge=4, description="Stored grid points, subsampled from the fine grid.")
    fine_resolution: int = Field(256, ge=8, description="Points of the periodic grid the PDE is solved on.")
    horizon: int = Field(20, ge=1, description="Snapshots predicted after the initial one (the output channels).")
    sensors: int = Field(16, ge=1, description="Observed grid points per trajectory (random subset, random order).")
    noise_level: float = Field(0.05, ge=0.0, description="Observation noise std as a fraction of the field's RMS.")
    observation_probability: float = Field(
        0.5, ge=0.0, le=1.0, description="Chance that a snapshot is observed (irregular observation times)."
    )
    seed: int = Field(0, ge=0, description="Root seed; trajectory i draws from its own stream (seed, i).")
    batch_size: int = Field(
        64,
        ge=1,
        description="Trajectories advanced together (vectorised). Does not change the data.",
        json_schema_extra={"affects_output": False},
    )
    domain_length: float
    dt: float
    snapshot_interval: float

    @model_validator(mode="after")
    def _grids_and_steps_fit(self) -> _TrajectoryParams:
        if self.fine_resolution % self.resolution:
            raise ValueError(
                f"fine_resolution {self.fine_resolution} is not a multiple of resolution {self.resolution}"
            )
        if self.sensors > self.resolution:
            raise ValueError(f"sensors {self.sensors} exceed the {self.resolution} grid points")
        if not math.isclose(self.steps_per_snapshot * self.dt, self.snapshot_interval, rel_tol=1e-9):
            raise ValueError(
                f"snapshot_interval {self.snapshot_interval} is not a whole number of time steps {self.dt}"
            )
        return self

    @property
    def steps_per_snapshot(self) -> int:
        return round(self.snapshot_interval / self.dt)

    @property
    def in_channels(self) -> int:
        return 1 + 2 * self.horizon

    @property
    def out_channels(self) -> int:
        return self.horizon


class KdVParams(_TrajectoryParams):
    domain_length: float = Field(40.0, gt=0.0, description="Period L of the domain [0, L).")
    dt: float = Field(1e-3, gt=0.0, description="ETDRK4 time step.")
    snapshot_interval: float = Field(0.25, gt=0.0, description="Time between stored snapshots.")
    n_solitons: int = Field(2, ge=1, description="Solitons in the initial condition.")
    min_speed: float = Field(0.5, gt=0.0, description="Least soliton speed c (amplitude c / 2).")
    max_speed: float = Field(2.0, gt=0.0, description="Largest soliton speed c.")

    @model_validator(mode="after")
    def _speeds_ordered(self) -> KdVParams:
        if self.min_speed > self.max_speed:
            raise ValueError(f"min_speed {self.min_speed} exceeds max_speed {self.max_speed}")
        return self


class KuramotoSivashinskyParams(_TrajectoryParams):
    domain_length: float = Field(32 * math.pi, gt=0.0, description="Period L of the domain [0, L).")
    dt: float = Field(0.25, gt=0.0, description="ETDRK4 time step.")
    snapshot_interval: float = Field(1.0, gt=0.0, description="Time between stored snapshots.")
    fine_resolution: int = Field(128, ge=8, description="Points of the periodic grid the PDE is solved on.")
    warmup: float = Field(100.0, ge=0.0, description="Time run before the first snapshot (transient discarded).")
    initial_modes: int = Field(8, ge=1, description="Fourier modes of the random initial field.")
    initial_amplitude: float = Field(1.0, gt=0.0, description="Standard deviation of the initial field.")


def _wavenumbers(size: int, length: float) -> np.ndarray:
    return 2.0 * np.pi * np.arange(size // 2 + 1) / length


def kdv_operators(size: int, length: float) -> tuple[np.ndarray, np.ndarray]:
    k = _wavenumbers(size, length)
    return 1j * k**3, -3j * k


def kuramoto_sivashinsky_operators(size: int, length: float) -> tuple[np.ndarray, np.ndarray]:
    k = _wavenumbers(size, length)
    return k**2 - k**4, -0.5j * k


def kdv_soliton(x: np.ndarray, time: float, speed: float, centre: float, length: float) -> np.ndarray:
    """(c / 2) sech^2(sqrt(c) / 2 (x - c t - x0)) on the periodic domain (nearest image of the centre)."""
    shift = (x - centre - speed * time + length / 2.0) % length - length / 2.0
    return 0.5 * speed / np.cosh(0.5 * math.sqrt(speed) * shift) ** 2


def observe(
    rng: np.random.Generator, trajectory: np.ndarray, params: _TrajectoryParams
) -> tuple[np.ndarray, np.ndarray]:
    """Observation values and sensor ranks (H, n) of the H snapshots of ``trajectory`` (H, n) (see module)."""
    horizon, size = trajectory.shape
    ranks = np.zeros(size)
    ranks[rng.permutation(size)[: params.sensors]] = np.arange(1, params.sensors + 1)
    observed_times = rng.random(horizon) < params.observation_probability
    mask = observed_times[:, None] & (ranks > 0)[None, :]
    noise = params.noise_level * np.sqrt(np.mean(trajectory**2)) * rng.standard_normal((horizon, size))
    return np.where(mask, trajectory + noise, 0.0), np.where(mask, ranks[None, :], 0.0)


def _generate(
    params: _TrajectoryParams,
    operators: tuple[np.ndarray, np.ndarray],
    initial: Callable[[np.random.Generator, np.ndarray], np.ndarray],
    warmup_steps: int,
    description: str,
) -> dict[str, np.ndarray]:
    x = np.arange(params.fine_resolution) * params.domain_length / params.fine_resolution
    step = params.fine_resolution // params.resolution

    def solve_batch(indices: range, resolutions: list[int]) -> ResolutionArrays:
        rngs = [sample_rng(params.seed, index) for index in indices]
        u0 = np.stack([initial(rng, x) for rng in rngs])
        if warmup_steps:
            u0 = etdrk4_solve(u0, *operators, params.dt, warmup_steps, 1)[:, 0]
        trajectory = etdrk4_solve(u0, *operators, params.dt, params.steps_per_snapshot, params.horizon)
        u0, trajectory = u0[:, ::step], trajectory[..., ::step]
        observations = [observe(rng, sample, params) for rng, sample in zip(rngs, trajectory, strict=True)]
        values = np.stack([value for value, _ in observations])
        ranks = np.stack([rank for _, rank in observations])
        inputs = np.concatenate([u0[:, None], values, ranks], axis=1)
        return {params.resolution: (inputs.astype(np.float32), trajectory.astype(np.float32))}

    split_sizes = {"train": params.n_train, "val": params.n_val, "test": params.n_test}
    return generate_in_batches(split_sizes, params.batch_size, solve_batch, description, params.resolution, [])


def generate_kdv(params: KdVParams) -> dict[str, np.ndarray]:
    def initial(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
        speeds = rng.uniform(params.min_speed, params.max_speed, params.n_solitons)
        centres = rng.uniform(0.0, params.domain_length, params.n_solitons)
        return sum(kdv_soliton(x, 0.0, c, x0, params.domain_length) for c, x0 in zip(speeds, centres, strict=True))

    operators = kdv_operators(params.fine_resolution, params.domain_length)
    return _generate(params, operators, initial, 0, f"KdV {params.fine_resolution} -> {params.resolution}")


def generate_kuramoto_sivashinsky(params: KuramotoSivashinskyParams) -> dict[str, np.ndarray]:
    def initial(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
        k = 2.0 * np.pi * np.arange(1, params.initial_modes + 1) / params.domain_length
        a, b = (
            rng.standard_normal((2, params.initial_modes)) * params.initial_amplitude / math.sqrt(params.initial_modes)
        )
        return (a[:, None] * np.cos(np.outer(k, x)) + b[:, None] * np.sin(np.outer(k, x))).sum(axis=0) * math.sqrt(2)

    operators = kuramoto_sivashinsky_operators(params.fine_resolution, params.domain_length)
    warmup_steps = round(params.warmup / params.dt)
    return _generate(params, operators, initial, warmup_steps, f"KS {params.fine_resolution} -> {params.resolution}")
