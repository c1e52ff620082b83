"""Containers for generated data (numpy only: no torch at import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class TimeWindow:
    """How a time-series data set is learned autoregressively: each model call maps the last ``input_steps``
    snapshots to the next ``step``; validation and test roll it out over the whole output horizon."""

    input_steps: int
    step: int
    training: Literal["rollout", "teacher_forcing"]
    """``rollout``: training rolls out over the horizon too, back-propagating through every call (the FNO-2D
    recurrent setting); ``teacher_forcing``: every call sees the true previous snapshots."""


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
    test_at_resolution: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """The test samples again at each of the data set's ``test_resolutions``, as (x, y): zero-shot
    super-resolution (or sub-resolution) testing of a model trained at the training resolution."""
    time_window: TimeWindow | None = None
    """Set when the outputs are a time series to learn autoregressively; None: all outputs at once."""
    physics: dict[str, float] | None = None
    """The coefficients of the equation the data solve, for physics losses (Navier-Stokes: ``nu``,
    ``forcing_amplitude`` and the snapshots' ``time_step``); None when the data set states none."""
