"""Batched generation shared by the time-stepping data sets (Burgers, Navier-Stokes).

Their solvers advance many samples at once (vectorised spectral methods), so samples are produced in batches of
consecutive indices. Sample i still draws only from its own random stream (seed, i), and every operation acts on
each sample separately, so the data do not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sweeplab.data._splits import split_in_order
from sweeplab.data.darcy import _progress

__all__ = ["generate_in_batches", "sample_rng"]

SolveBatch = Callable[[range], tuple[np.ndarray, np.ndarray]]
"""Maps sample indices to (inputs, outputs), float32, each shaped (len(indices), channels, *grid)."""


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of sample ``index``: independent of every other sample's and of the batching."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def generate_in_batches(
    split_sizes: dict[str, int], batch_size: int, solve_batch: SolveBatch, description: str
) -> dict[str, np.ndarray]:
    """Samples 0 .. total-1 in batches, split in order into x_/y_{train,val,test} (keys of ``split_sizes``)."""
    total = sum(split_sizes.values())
    inputs: np.ndarray | None = None
    outputs: np.ndarray | None = None
    with _progress(total, description) as advance:
        for start in range(0, total, batch_size):
            indices = range(start, min(start + batch_size, total))
            batch_inputs, batch_outputs = solve_batch(indices)
            if inputs is None or outputs is None:
                inputs = np.empty((total, *batch_inputs.shape[1:]), dtype=np.float32)
                outputs = np.empty((total, *batch_outputs.shape[1:]), dtype=np.float32)
            inputs[indices.start : indices.stop] = batch_inputs
            outputs[indices.start : indices.stop] = batch_outputs
            for _ in indices:
                advance()
    assert inputs is not None and outputs is not None  # total >= 1: every split has at least one sample

    return split_in_order(inputs, outputs, split_sizes)
