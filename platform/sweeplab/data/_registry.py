"""Registry of data sets. Entries name their parameter model and generator by import path (loaded lazily)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweeplab_modules.registry import import_target


@dataclass(frozen=True)
class DatasetEntry:
    """A data set: typed parameters (a pydantic model, extra keys forbidden) and a deterministic generator.

    ``version`` is part of the cache key: bump it whenever the generator's output changes for the same parameters.
    """

    name: str
    params: str
    generate: str
    task: str
    spatial_dims: int
    in_channels: int
    out_channels: int
    version: str
    description: str

    def params_model(self) -> Any:
        return import_target(self.params)


DATASETS: Mapping[str, DatasetEntry] = {
    entry.name: entry
    for entry in [
        DatasetEntry(
            name="darcy",
            params="sweeplab.data.darcy:DarcyParams",
            generate="sweeplab.data.darcy:generate_darcy",
            task="operator",
            spatial_dims=2,
            in_channels=1,
            out_channels=1,
            version="1",
            description="2D Darcy flow, FNO recipe: coefficient a -> pressure u (Li et al. 2020)",
        ),
    ]
}
