"""Samples are generated in one sequence; the splits are consecutive slices of it. The test samples may also be
wanted at other resolutions (``test_resolutions``): those arrays are stored as ``x_test_<r>``/``y_test_<r>``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import Field

__all__ = [
    "SampleArrays",
    "check_resolutions",
    "extra_test_resolutions",
    "split_in_order",
    "keys_at_resolution",
    "multi_resolution_field",
]

ResolutionArrays = dict[int, tuple[np.ndarray, np.ndarray]]
"""Inputs and outputs of a block of consecutive samples, (samples, channels, *grid) each, by grid size."""


def multi_resolution_field() -> Any:
    """The ``test_resolutions`` parameter every grid data set shares."""
    return Field(
        default_factory=list,
        description="Grid sizes at which the test samples are stored too (subsampled from the same fine solve), "
        "for zero-shot testing at resolutions other than the training one; logged as test_rel_l2_<size>.",
        # Left out of the cache key while empty, so that data sets cached before the field existed keep their key.
        json_schema_extra={"identity_omits_default": True},
    )


def check_resolutions(resolution: int, test_resolutions: Sequence[int], fits: Callable[[int], bool], rule: str) -> None:
    """Raise ValueError unless the training and every test grid size ``fits`` the fine grid (``rule`` says how)."""
    repeated = sorted({r for r in test_resolutions if list(test_resolutions).count(r) > 1})
    if repeated:
        raise ValueError(f"test_resolutions lists {', '.join(map(str, repeated))} more than once")
    for name, size in [("resolution", resolution)] + [("test resolution", r) for r in test_resolutions]:
        if size < 2 or not fits(size):
            raise ValueError(f"{name} {size} is not a subsample of {rule}")


def extra_test_resolutions(resolution: int, test_resolutions: Sequence[int]) -> list[int]:
    """The test resolutions stored apart: the training resolution's test split serves that one."""
    return [r for r in test_resolutions if r != resolution]


def keys_at_resolution(resolution: int) -> tuple[str, str]:
    """The names of the test split's arrays at another grid size."""
    return f"x_test_{resolution}", f"y_test_{resolution}"


def split_in_order(inputs: np.ndarray, outputs: np.ndarray, split_sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """``x_<split>``/``y_<split>`` views of consecutive samples, in the order of ``split_sizes``."""
    arrays: dict[str, np.ndarray] = {}
    start = 0
    for split, size in split_sizes.items():
        arrays[f"x_{split}"] = inputs[start : start + size]
        arrays[f"y_{split}"] = outputs[start : start + size]
        start += size
    return arrays


class SampleArrays:
    """The arrays of a data set being generated, filled block by block: every sample at ``resolution``, the
    test samples (the last ``split_sizes["test"]``) also at each of ``test_resolutions``."""

    def __init__(self, split_sizes: dict[str, int], resolution: int, test_resolutions: Sequence[int]) -> None:
        self.split_sizes = split_sizes
        self.total = sum(split_sizes.values())
        self.test_start = self.total - split_sizes["test"]
        self.resolution = resolution
        self.extra = extra_test_resolutions(resolution, test_resolutions)
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def resolutions_for(self, indices: range) -> list[int]:
        """The grid sizes a block of samples is needed at."""
        return [self.resolution] + (self.extra if indices.stop > self.test_start else [])

    def put(self, indices: range, blocks: ResolutionArrays) -> None:
        for size in self.resolutions_for(indices):
            inputs, outputs = blocks[size]
            first = indices.start if size == self.resolution else max(indices.start, self.test_start)
            offset = self.test_start if size != self.resolution else 0
            count = self.total - offset
            if size not in self._arrays:
                self._arrays[size] = (
                    np.empty((count, *inputs.shape[1:]), dtype=np.float32),
                    np.empty((count, *outputs.shape[1:]), dtype=np.float32),
                )
            stored_inputs, stored_outputs = self._arrays[size]
            rows = slice(first - indices.start, indices.stop - indices.start)
            stored_inputs[first - offset : indices.stop - offset] = inputs[rows]
            stored_outputs[first - offset : indices.stop - offset] = outputs[rows]

    def splits(self) -> dict[str, np.ndarray]:
        arrays = split_in_order(*self._arrays[self.resolution], self.split_sizes)
        for size in self.extra:
            arrays.update(zip(keys_at_resolution(size), self._arrays[size], strict=True))
        return arrays
