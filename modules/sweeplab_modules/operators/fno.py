"""Fourier Neural Operator (Li, Kovachki, Azizzadenesheli, Liu, Bhattacharya, Stuart, Anandkumar;
"Fourier Neural Operator for Parametric Partial Differential Equations", ICLR 2021, arXiv 2010.08895).

Architecture, as in the authors' current reference code: append the normalised grid coordinates to the
input channels, lift pointwise to ``width`` channels, optionally zero-pad the domain, apply ``n_layers``
Fourier layers ``v <- act(K v + W v)`` (no activation after the last), crop the padding, and project
pointwise ``width -> projection_width -> act -> out_channels``.

Published settings (the registry's presets ``paper`` and ``reference``; ``FNO1d`` and ``FNO2d`` default to
``reference``): 4 Fourier layers; 1D (Burgers) width 64 with 16 modes; 2D (Darcy) width 32 with 12 modes
per dimension; projection width 128; Adam lr 1e-3 halved every 100 epochs, 500 epochs, batch 20, relative L2
loss. The reference code's GELU activation and domain padding (8 or 9 points for Darcy) do better than the
paper's table.

``parametrization="mup"`` with a ``base_width`` gives the Maximal Update Parametrization (``layers/mup.py``):
the Fourier layers' spectral and pointwise weights are hidden weights, the projection's first map the readout;
at ``width == base_width`` it is the standard network, and a learning rate tuned there transfers to other widths.

Layout: input ``(batch, in_channels, *grid)``, output ``(batch, out_channels, *grid)`` on the same grid, at
any resolution with at least ``2 * modes`` points per dimension (after padding). ``in_channels`` counts the
input fields only; the coordinate channels are added inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from sweeplab_modules.constraints import padded_size
from sweeplab_modules.layers import (
    FourierLayer,
    PointwiseLinear,
    PointwiseMLP,
    append_grid_coordinates,
    crop_domain,
    make_activation,
    pad_domain,
)
from sweeplab_modules.layers.mup import parametrize
from sweeplab_modules.layers.validation import checked_choice, checked_size
from sweeplab_modules.operators._variants import WithVariants

__all__ = ["FNO", "FNO1d", "FNO2d"]


class FNO(WithVariants, nn.Module):
    """FNO on ``spatial_dims``-dimensional grids, ``(batch, in_channels, *grid) -> (batch, out_channels, *grid)``.

    ``width`` and ``modes`` have no default: they depend on the problem (the registry's presets hold the published
    ones); the other defaults are the reference code's architecture without domain padding.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int,
        width: int,
        modes: int,
        n_layers: int = 4,
        projection_width: int = 128,
        padding: int = 0,
        padding_fraction: float = 0.0,
        activation: Literal["gelu", "relu", "polyrelu", "polynorm"] = "gelu",
        parametrization: Literal["standard", "mup"] = "standard",
        base_width: int | None = None,
    ) -> None:
        super().__init__()
        in_channels = checked_size("in_channels", in_channels, minimum=1)
        out_channels = checked_size("out_channels", out_channels, minimum=1)
        width = checked_size("width", width, minimum=1)
        modes = checked_size("modes", modes, minimum=1)
        n_layers = checked_size("n_layers", n_layers, minimum=1)
        projection_width = checked_size("projection_width", projection_width, minimum=1)
        activation = checked_choice("activation", activation, ("gelu", "relu", "polyrelu", "polynorm"))
        self.spatial_dims = spatial_dims = checked_size("spatial_dims", spatial_dims, minimum=1)
        self.in_channels = in_channels
        self.padding = checked_size("padding", padding, minimum=0)
        if not 0.0 <= padding_fraction <= 1.0:
            raise ValueError(f"padding_fraction must be in [0, 1], got {padding_fraction!r}")
        self.padding_fraction = float(padding_fraction)
        self.lift = PointwiseLinear(in_channels + spatial_dims, width)
        self.fourier_layers = nn.ModuleList(
            FourierLayer(width, (modes,) * spatial_dims, make_activation(activation) if i < n_layers - 1 else None)
            for i in range(n_layers)
        )
        self.projection = PointwiseMLP(width, projection_width, out_channels, activation)
        # Only width grows under muP: the lift is an input layer, the projection's first map (width ->
        # projection_width) the readout, its second one finite.
        parametrize(
            self,
            parametrization,
            width,
            base_width,
            hidden=[module for layer in self.fourier_layers for module in (layer.spectral, layer.pointwise)],
            readout=[self.projection[0]],
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input (batch, {self.in_channels}, {self.spatial_dims} grid dims), got {tuple(x.shape)}"
            )
        v = self.lift(append_grid_coordinates(x, self.spatial_dims))
        padding = self.domain_padding(x.shape[2:])
        v = pad_domain(v, padding, self.spatial_dims)
        for layer in self.fourier_layers:
            v = layer(v)
        v = crop_domain(v, padding, self.spatial_dims)
        return self.projection(v)

    def domain_padding(self, grid: Sequence[int]) -> list[int]:
        """Points padded per dimension: ``padded_size`` (``padding`` plus ``round(padding_fraction * (n - 1))``).

        A grid of ``n`` points holds the domain's nodes, ends included (as ``grid_coordinates`` assumes): ``n - 1``
        spacings. Padding ``f (n - 1)`` points pads a strip ``f`` domains wide at every resolution, and on grids
        refined from the training grid (``n' - 1 = r (n - 1)``: 29, 57, 113, 141, ... for 29) the padded points are
        nested like the nodes, ``p' = r p`` exactly wherever ``f (n - 1)`` is a whole number (``f = 6 / 28``: 6 at
        29, 12 at 57, 24 at 113). Rounding ``f n`` instead is off by a point at some refinements (``f = 0.2``:
        6 at 29 but 11 at 57), and the Fourier layers treat the padded grid as one period, so one point changes
        the frequencies the learned weights act on: the zero-shot error at 57 of a model trained at 29 went from
        0.092 (11 points) to 0.065 (12 points; BENCHMARKS.md, zero-shot against neuraloperator)."""
        return [padded_size(n, self.padding, self.padding_fraction) - n for n in grid]


class FNO1d(FNO, spatial_dims=1, preset=("fno1d", "reference")):
    """FNO on 1D grids; defaults: the registry's ``fno1d`` preset ``reference`` (Burgers: periodic, no padding)."""


class FNO2d(FNO, spatial_dims=2, preset=("fno2d", "reference")):
    """FNO on 2D grids; defaults: the registry's ``fno2d`` preset ``reference`` (Darcy: 9 points of domain padding,
    as its solution is not periodic). For evaluation at other resolutions, pad by a fraction of the domain instead
    (``padding=0, padding_fraction=0.25``: 7 points at 29, 14 at 57, 21 at 85)."""
