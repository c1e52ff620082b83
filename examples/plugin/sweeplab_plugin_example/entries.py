"""The registry entries that pyproject.toml's entry points name; importing this imports neither torch nor numpy."""

from sweeplab.data import DatasetEntry
from sweeplab_modules.registry import ModelEntry

CONV_OPERATOR1D = ModelEntry(
    name="conv_operator1d",
    target="sweeplab_plugin_example.models:ConvOperator1d",
    task="operator",
    spatial_dims=1,
    description="residual 1D CNN operator (example plugin)",
    presets={"small": {"width": 16, "n_blocks": 2, "kernel_size": 5}},
)

HEAT1D = DatasetEntry(
    name="heat1d",
    params="sweeplab_plugin_example.data:Heat1dParams",
    generate="sweeplab_plugin_example.data:generate_heat1d",
    task="operator",
    spatial_dims=1,
    in_channels=1,
    out_channels=1,
    version="1",
    description="1D heat equation, exact solution: u(., 0) -> u(., t) (example plugin)",
)
