"""The 1D heat equation on the periodic unit interval, solved exactly: u(., 0) -> u(., time).

u_t = viscosity u_xx; a random Fourier series u0 = sum_k a_k cos(2 pi k x) + b_k sin(2 pi k x), with
a_k, b_k ~ N(0, k^-2), decays mode by mode: u(x, t) = sum_k exp(-viscosity (2 pi k)^2 t) (...)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class Heat1dParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    resolution: int = Field(64, ge=8, description="grid points")
    modes: int = Field(16, ge=1, description="Fourier modes of the initial condition")
    viscosity: float = Field(0.01, gt=0)
    time: float = Field(0.1, gt=0)
    n_train: int = Field(200, ge=1)
    n_val: int = Field(50, ge=1)
    n_test: int = Field(50, ge=1)
    seed: int = 0


def generate_heat1d(params: Heat1dParams) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(params.seed)
    n = params.n_train + params.n_val + params.n_test
    k = np.arange(1, params.modes + 1)
    x = np.arange(params.resolution) / params.resolution
    cosines, sines = (rng.normal(size=(n, params.modes)) / k for _ in range(2))
    phase = 2 * np.pi * np.outer(k, x)
    decay = np.exp(-params.viscosity * (2 * np.pi * k) ** 2 * params.time)[:, None]
    initial = cosines @ np.cos(phase) + sines @ np.sin(phase)
    final = cosines @ (decay * np.cos(phase)) + sines @ (decay * np.sin(phase))
    arrays = {}
    start = 0
    for split in ("train", "val", "test"):
        size = getattr(params, f"n_{split}")
        arrays[f"x_{split}"] = initial[start : start + size, None].astype(np.float32)
        arrays[f"y_{split}"] = final[start : start + size, None].astype(np.float32)
        start += size
    return arrays
