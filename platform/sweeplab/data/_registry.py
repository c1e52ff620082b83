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

    def channels(self, params: Any) -> tuple[int, int]:
        """Input and output channels for validated ``params``: the entry's, unless the parameter model defines
        ``in_channels``/``out_channels`` itself (Navier-Stokes: they follow from the number of snapshots)."""
        return getattr(params, "in_channels", self.in_channels), getattr(params, "out_channels", self.out_channels)


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
        DatasetEntry(
            name="burgers",
            params="sweeplab.data.burgers:BurgersParams",
            generate="sweeplab.data.burgers:generate_burgers",
            task="operator",
            spatial_dims=1,
            in_channels=1,
            out_channels=1,
            version="1",
            description="1D viscous Burgers, FNO recipe: initial condition u(., 0) -> u(., 1) (Li et al. 2020)",
        ),
        # The channel counts depend on the parameters (input_steps, final_time / record_every); these are the
        # defaults (T = 50, 10 -> 40 snapshots), the only layout the cache accepts until they are computed.
        DatasetEntry(
            name="navier_stokes",
            params="sweeplab.data.navier_stokes:NavierStokesParams",
            generate="sweeplab.data.navier_stokes:generate_navier_stokes",
            task="operator",
            spatial_dims=2,
            in_channels=10,
            out_channels=40,
            version="1",
            description=(
                "2D Navier-Stokes vorticity on the torus, FNO recipe: snapshots t = 1..10 -> t = 11..T (Li et al. 2020)"
            ),
        ),
    ]
}
