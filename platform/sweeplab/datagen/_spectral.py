"""Fourier-grid helpers shared by the pseudo-spectral solvers (numpy; the torch solver converts the results)."""

from __future__ import annotations

import numpy as np

__all__ = ["dealiasing_cutoff", "fft_wavenumbers"]


def dealiasing_cutoff(size: int) -> int:
    """The highest wavenumber |k| that the 2/3 rule keeps on ``size`` points: 3|k| < size.

    With all modes above it zero, the aliases of a quadratic product land only on modes above it, where the
    product is truncated again: products are then exact on the kept modes.
    """
    return (size - 1) // 3


def fft_wavenumbers(size: int) -> np.ndarray:
    """The integer wavenumbers of an FFT of length ``size``, in numpy's and torch's order (float64)."""
    return np.fft.fftfreq(size, d=1.0 / size)
