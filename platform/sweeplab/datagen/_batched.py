"""Batched generation shared by the time-stepping data sets (Burgers, Navier-Stokes).

Their solvers advance many samples at once (vectorised spectral methods), so samples are produced in batches of
consecutive indices. Sample i still draws only from its own random stream (seed, i), and every operation acts on
each sample separately, so the data do not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sweeplab.data._splits import ResolutionArrays, SampleArrays
from sweeplab.datagen.darcy import _progress

__all__ = ["generate_in_batches", "sample_rng"]

SolveBatch = Callable[[range, list[int]], ResolutionArrays]
"""Maps sample indices and grid sizes to (inputs, outputs) at each size, float32, each shaped
(len(indices), channels, *grid)."""


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of sample ``index``: independent of every other sample's and of the batching."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def generate_in_batches(
    split_sizes: dict[str, int],
    batch_size: int,
    solve_batch: SolveBatch,
    description: str,
    resolution: int,
    test_resolutions: list[int],
) -> dict[str, np.ndarray]:
    """Samples 0 .. total-1 in batches, split in order into x_/y_{train,val,test} (keys of ``split_sizes``) at
    ``resolution``, plus x_/y_test_<r> for the other ``test_resolutions`` (see ``SampleArrays``)."""
    arrays = SampleArrays(split_sizes, resolution, test_resolutions)
    with _progress(arrays.total, description) as advance:
        for start in range(0, arrays.total, batch_size):
            indices = range(start, min(start + batch_size, arrays.total))
            arrays.put(indices, solve_batch(indices, arrays.resolutions_for(indices)))
            for _ in indices:
                advance()
    return arrays.splits()
