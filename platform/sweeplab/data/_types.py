"""Containers for generated data (numpy only: no torch at import)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OperatorData:
    """Input/output function pairs on a grid, shaped (samples, channels, *grid), float32, split three ways."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    identity: str
    """Content hash of generator name, parameters and version: what a run records to name its data."""
