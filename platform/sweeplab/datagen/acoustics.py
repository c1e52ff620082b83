"""Sound propagation in a 2D room with a parametrised source, after Borrel-Jensen, Goswami, Engsig-Karup,
Karniadakis, Jeong (PNAS 2023, "Sound propagation in realistic interactive 3D scenes with parameterized sources
using deep neural operators"): initial pressure -> pressure field over time.

    p_tt = c^2 Laplace p   on the square room [0, L]^2,   p(., 0) = exp(-|x - x0|^2 / sigma0^2),   p_t(., 0) = 0,

with sigma0 = c / (pi f_max / 2) (the authors' source width for the highest frequency f_max) and the source
position x0 drawn uniformly at least ``source_margin`` from the walls. Each wall is rigid (zero normal
derivative) or absorbing (first-order Engquist-Majda condition p_t + c dp/dn = 0, exact for normal incidence).

Solver: second-order leapfrog in time and the 5-point Laplacian on the nodes x_i = i h of the fine grid (walls on
nodes), the walls by mirrored ghost nodes; on an absorbing wall the ghost node is eliminated with the centred
boundary condition, which turns the update at that node into
p^{n+1} = (2 p^n - (1 - beta) p^{n-1} + (c dt)^2 Lap p^n) / (1 + beta), beta = c dt / h per absorbing wall at
the node. The time step is the largest that keeps c dt / h <= ``courant`` (stability: <= 1/sqrt(2)) and divides
the snapshot interval. Verified (tests/test_acoustics.py) against the free-field solution before reflections
arrive (``free_field_pressure``), by second-order convergence under grid refinement, by the exact conservation
of the mean pressure with rigid walls, and by the energy the absorbing walls remove.

Stored: x = the initial pulse on the output grid (the branch input of the authors' DeepONet: the source position
is encoded by the pulse sampled on a fixed grid), y = the pressure at t_k = k T / n_times, k = 1 .. n_times, as
channels; arrays indexed [..., i_x, i_y]. Coarser outputs are subsamples of the fine grid.

Only numpy and pydantic are imported (scipy for the free-field reference).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sweeplab.data._splits import ResolutionArrays, check_resolutions, multi_resolution_field
from sweeplab.datagen._batched import generate_in_batches, sample_rng

__all__ = [
    "RoomAcousticsParams",
    "free_field_pressure",
    "gaussian_pulse",
    "generate_room_acoustics",
    "solve_room",
]

WallKind = Literal["rigid", "absorbing"]
# Stability of the 2D leapfrog scheme: c dt / h <= 1 / sqrt(2).
_MAX_COURANT = 1.0 / math.sqrt(2.0)


class RoomAcousticsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(400, ge=1, description="Training source positions.")
    n_val: int = Field(50, ge=1, description="Validation source positions (unseen in training).")
    n_test: int = Field(50, ge=1, description="Test source positions (unseen in training).")
    room_size: float = Field(2.0, gt=0.0, description="Side L of the square room [0, L]^2, metres.")
    speed_of_sound: float = Field(343.0, gt=0.0, description="c, m/s.")
    max_frequency: float = Field(
        1000.0, gt=0.0, description="f_max, Hz: the source width sigma0 = c / (pi f_max / 2) and the grid check."
    )
    walls: list[WallKind] = Field(
        ["rigid", "rigid", "rigid", "rigid"],
        min_length=4,
        max_length=4,
        description="Walls x = 0, x = L, y = 0, y = L: rigid (zero normal derivative) or absorbing (first order).",
    )
    final_time: float = Field(0.01, gt=0.0, description="T, seconds: the last snapshot.")
    n_times: int = Field(20, ge=1, description="Snapshots at t_k = k T / n_times, k = 1 .. n_times (the channels).")
    resolution: int = Field(33, ge=2, description="Output nodes per side (walls included), subsampled.")
    fine_resolution: int = Field(129, ge=3, description="Nodes per side of the grid the wave equation is solved on.")
    courant: float = Field(0.5, gt=0.0, le=_MAX_COURANT, description="Upper bound on c dt / h (stable to 1/sqrt 2).")
    source_margin: float = Field(0.3, ge=0.0, description="Least distance of a source from the walls, metres.")
    seed: int = Field(0, ge=0, description="Root seed; source i draws from its own stream (seed, i).")
    test_resolutions: list[int] = multi_resolution_field()
    batch_size: int = Field(
        50,
        ge=1,
        description="Sources advanced together (vectorised). Does not change the data.",
        json_schema_extra={"affects_output": False},
    )

    @model_validator(mode="after")
    def _consistent(self) -> RoomAcousticsParams:
        check_resolutions(
            self.resolution,
            self.test_resolutions,
            lambda size: (self.fine_resolution - 1) % (size - 1) == 0,
            f"fine_resolution {self.fine_resolution}: (fine_resolution - 1) must be a multiple of "
            f"(resolution - 1), e.g. 129 allows 65, 33, 17, ...",
        )
        wavelength = self.speed_of_sound / self.max_frequency
        if wavelength / self.spacing < 6.0:
            raise ValueError(
                f"fine_resolution {self.fine_resolution} gives {wavelength / self.spacing:.1f} points per shortest "
                f"wavelength c / f_max = {wavelength:.3g} m; at least 6 are needed"
            )
        if 2 * self.source_margin >= self.room_size:
            raise ValueError(
                f"source_margin {self.source_margin} leaves no room for a source in a {self.room_size} m room"
            )
        return self

    @property
    def out_channels(self) -> int:
        return self.n_times

    @property
    def spacing(self) -> float:
        return self.room_size / (self.fine_resolution - 1)

    @property
    def sigma(self) -> float:
        return self.speed_of_sound / (math.pi * self.max_frequency / 2.0)

    @property
    def steps_per_snapshot(self) -> int:
        interval = self.final_time / self.n_times
        return math.ceil(interval * self.speed_of_sound / (self.courant * self.spacing) - 1e-9)

    @property
    def dt(self) -> float:
        return self.final_time / (self.n_times * self.steps_per_snapshot)


def gaussian_pulse(nodes: np.ndarray, sources: np.ndarray, sigma: float) -> np.ndarray:
    """exp(-|x - x0|^2 / sigma^2) on the grid nodes^2 (axes x, y) for each source (n, 2): (n, len, len)."""
    dx = nodes[None, :, None] - sources[:, 0, None, None]
    dy = nodes[None, None, :] - sources[:, 1, None, None]
    return np.exp(-(dx**2 + dy**2) / sigma**2)


def solve_room(
    initial: np.ndarray,
    spacing: float,
    speed_of_sound: float,
    dt: float,
    steps_per_snapshot: int,
    n_snapshots: int,
    walls: list[str],
) -> np.ndarray:
    """Pressure snapshots (..., n_snapshots, N, N) after every ``steps_per_snapshot`` leapfrog steps of ``dt`` from
    ``initial`` (..., N, N) at rest, on the nodes x_i = i ``spacing`` (float64). ``walls``: x = 0, x = L, y = 0,
    y = L, each ``rigid`` or ``absorbing``."""
    p = np.asarray(initial, dtype=np.float64)
    size = p.shape[-1]
    courant = speed_of_sound * dt / spacing
    if courant > _MAX_COURANT + 1e-12:
        raise ValueError(f"c dt / h = {courant:.4g} exceeds the stability limit 1/sqrt(2)")
    damping = np.zeros((size, size))
    for kind, edge in zip(
        walls, [(0, slice(None)), (-1, slice(None)), (slice(None), 0), (slice(None), -1)], strict=True
    ):
        if kind == "absorbing":
            damping[edge] += courant
    factor = courant**2

    def laplacian(field: np.ndarray) -> np.ndarray:
        # Mirrored ghost nodes: zero normal derivative (absorbing walls correct for it through the damping).
        padded = np.pad(field, [(0, 0)] * (field.ndim - 2) + [(1, 1), (1, 1)], mode="reflect")
        return (
            padded[..., 2:, 1:-1] + padded[..., :-2, 1:-1] + padded[..., 1:-1, 2:] + padded[..., 1:-1, :-2] - 4 * field
        )

    # At rest: the centred difference p_t = 0 makes the ghost level p^{-1} = p^1, so the first step is a half step.
    previous, current = p, p + 0.5 * factor * laplacian(p)
    snapshots = np.empty(p.shape[:-2] + (n_snapshots, size, size))
    step = 1
    for index in range(n_snapshots):
        while step < (index + 1) * steps_per_snapshot:
            previous, current = (
                current,
                (2 * current - (1 - damping) * previous + factor * laplacian(current)) / (1 + damping),
            )
            step += 1
        snapshots[..., index, :, :] = current
    return snapshots


def free_field_pressure(radius: np.ndarray, time: float, sigma: float, speed_of_sound: float) -> np.ndarray:
    """The pressure at distance ``radius`` from a Gaussian pulse exp(-r^2 / sigma^2) released at rest in free 2D
    space: p(r, t) = sigma^2 / 2 int_0^inf exp(-k^2 sigma^2 / 4) cos(c k t) J0(k r) k dk (Hankel transform of
    the pulse, each mode oscillating at c k), by the trapezoid rule far into the Gaussian's tail."""
    from scipy.special import j0

    wavenumbers = np.linspace(0.0, 14.0 / sigma, 8001)
    integrand = (
        np.exp(-(wavenumbers**2) * sigma**2 / 4.0)
        * np.cos(speed_of_sound * wavenumbers * time)
        * j0(np.multiply.outer(np.asarray(radius, dtype=np.float64), wavenumbers))
        * wavenumbers
    )
    return 0.5 * sigma**2 * np.trapezoid(integrand, wavenumbers, axis=-1)


def generate_room_acoustics(params: RoomAcousticsParams) -> dict[str, np.ndarray]:
    """x_{split}: the initial pulse (samples, 1, r, r); y_{split}: the n_times snapshots (samples, n_times, r, r),
    float32, r = ``resolution`` (and each of ``test_resolutions`` for the test split)."""
    nodes = np.linspace(0.0, params.room_size, params.fine_resolution)
    low, high = params.source_margin, params.room_size - params.source_margin

    def solve_batch(indices: range, resolutions: list[int]) -> ResolutionArrays:
        sources = np.stack([sample_rng(params.seed, index).uniform(low, high, 2) for index in indices])
        initial = gaussian_pulse(nodes, sources, params.sigma)
        snapshots = solve_room(
            initial,
            params.spacing,
            params.speed_of_sound,
            params.dt,
            params.steps_per_snapshot,
            params.n_times,
            params.walls,
        )
        blocks: ResolutionArrays = {}
        for size in resolutions:
            step = (params.fine_resolution - 1) // (size - 1)
            blocks[size] = (
                initial[:, None, ::step, ::step].astype(np.float32),
                snapshots[..., ::step, ::step].astype(np.float32),
            )
        return blocks

    split_sizes = {"train": params.n_train, "val": params.n_val, "test": params.n_test}
    description = f"room acoustics {params.fine_resolution}^2 -> {params.resolution}^2"
    return generate_in_batches(
        split_sizes, params.batch_size, solve_batch, description, params.resolution, params.test_resolutions
    )
