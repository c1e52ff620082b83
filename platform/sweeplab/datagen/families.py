"""Families of random linear systems on the unit square: the SKR paper's problem types, for the solver tests
and bench/datagen.py.

Each system is assembled from Gaussian random fields (``_grf``, cosine Karhunen-Loeve expansion) on an
n x n node grid with homogeneous Dirichlet boundary conditions and 5-point finite differences (the stencil
of ``darcy_system``; unknowns are the interior nodes):

- ``darcy_threshold``: -div(a grad u) = 1, a = 12 where g >= 0 else 3, g with alpha 2, tau 3 (FNO recipe).
- ``darcy_lognormal``: -div(a grad u) = 1, a = exp(g), g with alpha 2.5, tau 7 (SKR paper).
- ``poisson``: -div(a grad u) = f with a random coefficient a = exp(g_a) and a random source f = g_f (both
  alpha 2.5, tau 7): matrix and right-hand side change together.
- ``helmholtz``: -Laplace u - k(x)^2 u = 1 with k(x)^2 = k0^2 exp(g), g with alpha 2.5, tau 7. Indefinite
  once k^2 passes the first Dirichlet eigenvalue 2 pi^2 ~ 19.7 by enough: k0 = 3 exceeds it only where g is
  large (some systems are provably definite, see ``helmholtz_system``); k0 = 7.5 puts about three eigenvalues
  below zero, where restarted GMRES(40) stagnates and recycling does not (bench/datagen.py).

System i draws only from its own random stream (seed, i), as the Darcy data set does.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, get_args

import numpy as np

from sweeplab.datagen._grf import sample_gaussian_random_field
from sweeplab.datagen.darcy import darcy_system
from sweeplab.datagen.solvers import LinearSystem

__all__ = ["FAMILIES", "Family", "helmholtz_system", "poisson_system", "random_systems"]

Family = Literal["darcy_threshold", "darcy_lognormal", "poisson", "helmholtz"]
FAMILIES: tuple[str, ...] = get_args(Family)

# The SKR paper's random field: smoother than white noise, correlation length ~ 1/7 of the square.
_SKR_ALPHA, _SKR_TAU = 2.5, 7.0


def poisson_system(coefficient: np.ndarray, source: np.ndarray) -> LinearSystem:
    """-div(a grad u) = f with nodal a and f; the parameter field is both, stacked (sorting compares both)."""
    system = darcy_system(coefficient, source)
    return dataclasses.replace(system, parameter=np.stack([coefficient, source]))


def helmholtz_system(wavenumber_squared: np.ndarray, f: float | np.ndarray = 1.0) -> LinearSystem:
    """-Laplace u - k^2 u = f with nodal k^2 (n x n, boundary included), u = 0 on the boundary.

    Scaled like ``darcy_system`` (matrix h^2 times the operator). Marked definite only when max k^2 is below
    the smallest eigenvalue of the discrete Laplacian, which proves it; otherwise treated as indefinite.
    """
    from scipy.sparse import diags_array

    wavenumber_squared = np.asarray(wavenumber_squared, dtype=np.float64)
    laplacian = darcy_system(np.ones_like(wavenumber_squared), f)
    n = wavenumber_squared.shape[0]
    spacing = 1.0 / (n - 1)
    shift = spacing**2 * wavenumber_squared[1:-1, 1:-1].ravel()
    # The smallest eigenvalue of the 5-point Dirichlet Laplacian (h^2-scaled): 8 sin^2(pi h / 2).
    smallest_laplacian_eigenvalue = 8.0 * math.sin(math.pi * spacing / 2.0) ** 2
    return LinearSystem(
        matrix=(laplacian.matrix - diags_array(shift)).tocsr(),
        rhs=laplacian.rhs,
        parameter=wavenumber_squared,
        definite=bool(shift.max() < smallest_laplacian_eigenvalue),
    )


def random_systems(family: Family, count: int, size: int, seed: int = 0, wavenumber: float = 3.0) -> list[LinearSystem]:
    """``count`` systems of ``family`` on a ``size`` x ``size`` node grid ((size - 2)^2 unknowns).

    ``wavenumber`` is k0 of the Helmholtz family (ignored by the others).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    systems = []
    for index in range(count):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        if family == "darcy_threshold":
            field = sample_gaussian_random_field(rng, size, 2.0, 3.0)
            systems.append(darcy_system(np.where(field >= 0.0, 12.0, 3.0)))
        elif family == "darcy_lognormal":
            systems.append(darcy_system(np.exp(sample_gaussian_random_field(rng, size, _SKR_ALPHA, _SKR_TAU))))
        elif family == "poisson":
            coefficient, source = sample_gaussian_random_field(rng, size, _SKR_ALPHA, _SKR_TAU, batch=2)
            systems.append(poisson_system(np.exp(coefficient), source))
        else:
            field = sample_gaussian_random_field(rng, size, _SKR_ALPHA, _SKR_TAU)
            systems.append(helmholtz_system(wavenumber**2 * np.exp(field)))
    return systems
