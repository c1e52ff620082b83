"""Samples are generated in one sequence; the splits are consecutive slices of it."""

from __future__ import annotations

import numpy as np


def split_in_order(inputs: np.ndarray, outputs: np.ndarray, split_sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """``x_<split>``/``y_<split>`` views of consecutive samples, in the order of ``split_sizes``."""
    arrays: dict[str, np.ndarray] = {}
    start = 0
    for split, size in split_sizes.items():
        arrays[f"x_{split}"] = inputs[start : start + size]
        arrays[f"y_{split}"] = outputs[start : start + size]
        start += size
    return arrays
