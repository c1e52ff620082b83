"""What an architecture needs of the grid it is trained and evaluated on, checked without importing torch.

A registry entry names its check (``ModelEntry.grid_check``); ``sweeplab validate`` calls it with a trial's
constructor arguments and every grid the model will see, so a study that could only fail in its trials is
rejected before anything runs. The layers apply the same rules at run time (one piece of code for both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["fno_grid_problem", "padded_size", "sfno_grid_problem", "spectral_grid_problem"]


def spectral_grid_problem(modes: Sequence[int], grid: Sequence[int]) -> str | None:
    """Why a truncated Fourier convolution keeping ``modes`` cannot act on ``grid``, or None.

    Leading dims keep ``2 * m`` frequencies (``0 .. m-1`` and ``-m .. -1``) that must not overlap: ``n >= 2 m``;
    the real FFT's last dim keeps ``m`` of its ``n // 2 + 1``: ``n >= 2 (m - 1)``.
    """
    too_small = [n < 2 * m for m, n in zip(modes[:-1], grid[:-1], strict=True)]
    too_small.append(grid[-1] // 2 + 1 < modes[-1])
    if any(too_small):
        return (
            f"grid {tuple(grid)} is too coarse for modes {tuple(modes)}: need n >= 2 * modes "
            "along the leading dims and n >= 2 * (modes - 1) along the last"
        )
    return None


def padded_size(n: int, padding: int, padding_fraction: float) -> int:
    """Points of one grid dimension after the FNO's domain padding: ``padding`` plus ``padding_fraction`` of the
    ``n - 1`` spacings, so that padded points nest on refined grids (``FNO.domain_padding`` says why)."""
    return n + padding + round(padding_fraction * (n - 1))


def fno_grid_problem(params: Mapping[str, Any], grid: Sequence[int]) -> tuple[str, str] | None:
    """``(parameter, problem)`` when an FNO with ``params`` cannot run on ``grid``; None when it can."""
    modes = params["modes"]
    padded = [padded_size(n, params.get("padding", 0), params.get("padding_fraction", 0.0)) for n in grid]
    if spectral_grid_problem((modes,) * len(grid), padded) is None:
        return None
    # Square grids: the leading dims bind (n >= 2 m) in 2D and up, the real FFT's last dim (n // 2 + 1 >= m) in 1D.
    largest = min(n // 2 for n in padded) if len(grid) > 1 else padded[0] // 2 + 1
    seen = f"{tuple(padded)} after padding" if padded != list(grid) else f"{tuple(grid)}"
    return "modes", f"{modes} Fourier modes do not fit the grid {seen}: at most {largest} modes fit"


def sfno_grid_problem(params: Mapping[str, Any], grid: Sequence[int]) -> tuple[str, str] | None:
    """``(parameter, problem)`` when an SFNO with ``params`` cannot run on the ``(x, y)`` ``grid``; None when it can.

    Its time windows are zero-padded to whatever its temporal modes need, so only the spatial modes bind:
    ``n >= 2 * modes`` per side, for the hidden layers' ``modes`` and the output layer's ``output_modes``.
    """
    for name in ("modes", "output_modes"):
        modes = params.get(name) or params["modes"]  # output_modes None: the hidden layers' modes
        if any(n < 2 * modes for n in grid):
            return name, f"{modes} Fourier modes do not fit the grid {tuple(grid)}: at most {min(grid) // 2} modes fit"
    return None
