"""Argument and input checks shared by the grid operators: bad input gets a clear error, not a shape mismatch."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from torch import Tensor

__all__ = ["check_grid_input", "checked_choice", "checked_size"]


def checked_size(name: str, value: object, minimum: int) -> int:
    # Integral admits numpy integers from a sampler; bool is an int but never a meaningful size.
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def checked_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


def check_grid_input(x: Tensor, in_channels: int, spatial_dims: int = 2) -> None:
    """``x`` must be ``(batch, in_channels, *grid)`` with ``spatial_dims`` grid dims."""
    if x.dim() != spatial_dims + 2 or x.shape[1] != in_channels:
        raise ValueError(f"expected input (batch, {in_channels}, {spatial_dims} grid dims), got {tuple(x.shape)}")
