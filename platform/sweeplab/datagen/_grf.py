"""Gaussian random fields on the unit square in the cosine (zero Neumann) basis: the FNO Darcy recipe.

The field is a truncated Karhunen-Loeve expansion of N(0, tau^(2 alpha - 2) (-Laplace + tau^2 I)^(-alpha))
with zero Neumann boundary conditions, sampled at s x s points:

    coef[k1, k2] = tau^(alpha - 1) * (pi^2 (k1^2 + k2^2) + tau^2)^(-alpha / 2),   k1, k2 = 0 .. s-1
    L = s * coef * xi,  xi ~ N(0, 1),  L[0, 0] = 0  (zero mean)
    g = inverse 2D DCT of L

Normalisation: the recipe's inverse DCT is MATLAB's ``idct2``, which is the orthonormal type-II inverse (a
type-III transform); ``scipy.fft.idctn(L, type=2, norm="ortho")`` is the same transform. Its basis vectors
have unit Euclidean norm on the s x s grid, i.e. they are the continuous L2(0,1)^2-normalised cosines divided
by s, which the factor s in L cancels. So g samples the continuous field with eigenvalues coef^2, and the
spatial mean of the pointwise variance of g is exactly ``sum(coef^2)`` over k != 0 (the tests check this).
"""

from __future__ import annotations

import numpy as np


def grf_spectral_scale(size: int, alpha: float, tau: float) -> np.ndarray:
    """The standard deviation ``coef[k1, k2]`` of each cosine mode, shape (size, size); ``coef[0, 0] = 0``."""
    wavenumbers = np.arange(size, dtype=np.float64)
    squared_norm = wavenumbers[:, None] ** 2 + wavenumbers[None, :] ** 2
    scale = tau ** (alpha - 1.0) * (np.pi**2 * squared_norm + tau**2) ** (-alpha / 2.0)
    scale[0, 0] = 0.0
    return scale


def gaussian_random_field(white_noise: np.ndarray, alpha: float, tau: float) -> np.ndarray:
    """Fields g from standard normal ``white_noise`` shaped (..., s, s), vectorised over leading axes."""
    from scipy.fft import idctn

    size = white_noise.shape[-1]
    if white_noise.ndim < 2 or white_noise.shape[-2] != size:
        raise ValueError(f"white noise must end in two equal axes (s, s), got shape {white_noise.shape}")
    modes = size * grf_spectral_scale(size, alpha, tau) * white_noise
    return idctn(modes, type=2, norm="ortho", axes=(-2, -1))


def sample_gaussian_random_field(
    rng: np.random.Generator, size: int, alpha: float, tau: float, batch: int | None = None
) -> np.ndarray:
    """Draw one field (shape (size, size)) or ``batch`` fields (shape (batch, size, size)) from ``rng``."""
    shape = (size, size) if batch is None else (batch, size, size)
    return gaussian_random_field(rng.standard_normal(shape), alpha, tau)
