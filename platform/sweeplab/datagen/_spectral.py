"""Fourier-grid helpers shared by the pseudo-spectral solvers (numpy; the torch solver converts the results)."""

from __future__ import annotations

import numpy as np

__all__ = ["dealiasing_cutoff", "etdrk4_solve", "fft_wavenumbers"]

# Points on the circle around each z for the phi functions (Kassam & Trefethen 2005 use 32 on a half circle for
# real arguments; a full circle serves complex ones too).
_CONTOUR_POINTS = 64


def dealiasing_cutoff(size: int) -> int:
    """The highest wavenumber |k| that the 2/3 rule keeps on ``size`` points: 3|k| < size.

    With all modes above it zero, the aliases of a quadratic product land only on modes above it, where the
    product is truncated again: products are then exact on the kept modes.
    """
    return (size - 1) // 3


def fft_wavenumbers(size: int) -> np.ndarray:
    """The integer wavenumbers of an FFT of length ``size``, in numpy's and torch's order (float64)."""
    return np.fft.fftfreq(size, d=1.0 / size)


def _phi_functions(linear: np.ndarray, dt: float) -> tuple[np.ndarray, ...]:
    """exp(L dt), exp(L dt / 2) and the ETDRK4 weights for a diagonal, complex L: contour means of each phi
    function over a unit circle around z = L dt (exact for all z, z = 0 included)."""
    circle = np.exp(2j * np.pi * (np.arange(_CONTOUR_POINTS) + 0.5) / _CONTOUR_POINTS)
    z = linear[:, None] * dt + circle[None, :]
    exp_z = np.exp(z)

    def mean(values: np.ndarray) -> np.ndarray:
        result = dt * np.mean(values, axis=-1)
        return result.real if np.isrealobj(linear) else result

    q = mean((np.exp(z / 2.0) - 1.0) / z)
    f1 = mean((-4.0 - z + exp_z * (4.0 - 3.0 * z + z**2)) / z**3)
    f2 = mean((2.0 + z + exp_z * (z - 2.0)) / z**3)
    f3 = mean((-4.0 - 3.0 * z - z**2 + exp_z * (4.0 - z)) / z**3)
    return np.exp(linear * dt), np.exp(linear * dt / 2.0), q, f1, f2, f3


def etdrk4_solve(
    u0: np.ndarray,
    linear: np.ndarray,
    flux_factor: np.ndarray,
    dt: float,
    steps_per_snapshot: int,
    n_snapshots: int,
) -> np.ndarray:
    """Snapshots (..., n_snapshots, n) of u_t = L u + flux_factor (u^2)_hat every ``steps_per_snapshot`` steps of
    ``dt`` from ``u0`` (..., n), both operators diagonal on the rfft modes; modes with 3k >= n dropped."""
    size = u0.shape[-1]
    kept = np.arange(size // 2 + 1) <= dealiasing_cutoff(size)
    flux = np.where(kept, flux_factor, 0.0)
    decay, half_decay, q, f1, f2, f3 = _phi_functions(linear, dt)

    def nonlinear(spectrum: np.ndarray) -> np.ndarray:
        u = np.fft.irfft(spectrum, n=size)
        return flux * np.fft.rfft(u * u)

    v = np.where(kept, np.fft.rfft(np.asarray(u0, dtype=np.float64)), 0.0)
    snapshots = np.empty(u0.shape[:-1] + (n_snapshots, size))
    for index in range(n_snapshots):
        for _ in range(steps_per_snapshot):
            n_v = nonlinear(v)
            a = half_decay * v + q * n_v
            n_a = nonlinear(a)
            b = half_decay * v + q * n_a
            n_b = nonlinear(b)
            c = half_decay * a + q * (2.0 * n_b - n_v)
            n_c = nonlinear(c)
            v = decay * v + f1 * n_v + 2.0 * f2 * (n_a + n_b) + f3 * n_c
        snapshots[..., index, :] = np.fft.irfft(v, n=size)
    return snapshots
