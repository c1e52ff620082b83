"""MgNO (He, Liu, Xu; "MgNO: Efficient Parameterization of Linear Operators via Multigrid", ICLR 2024,
arXiv 2310.19809; code xlliu2017/MgNO).

A layer is ``u <- act(W u + B u + b)``: ``W`` one multi-channel V-cycle (the linear operator), ``B`` a 1x1
convolution and ``b`` its bias; ``n_layers`` such layers and a final bias-free 1x1 convolution to the output
channels, with no other lifting or projection. The first layer's V-cycle maps the ``in_channels`` input
fields to ``width`` channels, the others ``width -> width``. No grid coordinates are appended.

V-cycle (``MultigridVCycle``) with ``levels`` grids, each a stride-2 coarsening of the one above:

- level 0: ``u = S f`` then further smoothing steps; every smoothing step is ``u <- u + S (f - A u)`` with
  ``A`` and ``S`` learnable bias-free 3x3 convolutions (their own at every step);
- going down: ``u`` and the right-hand side are restricted by learnable bias-free 3x3 stride-2 convolutions
  (the right-hand side is ``f`` itself, as in the authors' Darcy code, or the residual ``f - A u`` of the
  paper's multigrid derivation with ``restrict_residual``), then smoothed;
- going up: ``u <- u + P u_coarse`` with ``P`` a learnable bias-free 4x4 stride-2 transposed convolution,
  then ``post_smoothing_steps`` smoothing steps.

Boundary conditions enter through the convolutions' padding mode: ``zeros`` for Dirichlet problems (Darcy),
``circular`` for periodic ones (Navier-Stokes on the torus), ``reflect`` or ``replicate`` for Neumann-like
ones. A grid of ``n`` points restricts to ``ceil(n / 2)``, so any size works (85 -> 43 -> 22 -> 11 -> 6 -> 3);
the transposed convolution produces ``2 ceil(n / 2)`` points, and the one beyond an odd fine grid is dropped
(zero boundary) or wrapped around (circular). Its 4 taps at offsets -1 .. 2 contain the 3x3 kernel the
authors use for odd sizes, so one set of weights serves every grid: the same model runs at any resolution.

Published Darcy settings (authors' commands): ``width`` 24, 6 levels, 1 smoothing step per level and 2 on the
coarsest, no post-smoothing; 4 layers for rough Darcy (alpha 2, tau 5; 0.57 M parameters, this module's
defaults) or 5 layers for the FNO's smooth Darcy; GELU; Adam with OneCycle, lr 5e-4, weight decay 1e-4,
batch 8, 500 epochs, H1 loss. Navier-Stokes nu = 1e-5: width 32, 5 levels with smoothing steps (1, 1, 1, 2, 2),
5 layers, circular padding, lr 1e-3, weight decay 1e-5.
"""

from __future__ import annotations

from numbers import Integral
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sweeplab_modules.layers import PointwiseLinear, make_activation
from sweeplab_modules.layers.validation import check_grid_input, checked_choice, checked_size

__all__ = ["PADDING_MODES", "MgNO", "MultigridVCycle"]

PADDING_MODES: tuple[str, ...] = ("zeros", "circular", "reflect", "replicate")


class _SmoothingStep(nn.Module):
    """``u <- u + S (f - A u)``, or ``u = S f`` for the first step of the cycle (no ``u`` yet)."""

    def __init__(self, u_channels: int, f_channels: int, padding_mode: str, *, first: bool) -> None:
        super().__init__()
        conv = {"kernel_size": 3, "padding": 1, "bias": False, "padding_mode": padding_mode}
        self.smoother = nn.Conv2d(f_channels, u_channels, **conv)
        self.operator = None if first else nn.Conv2d(u_channels, f_channels, **conv)

    def forward(self, u: Tensor | None, f: Tensor) -> Tensor:
        if self.operator is None:
            return self.smoother(f)
        return u + self.smoother(f - self.operator(u))


class _Level(nn.Module):
    """One grid of the V-cycle: restriction onto it (none on the finest), pre- and post-smoothing."""

    def __init__(
        self,
        u_channels: int,
        f_channels: int,
        padding_mode: str,
        *,
        finest: bool,
        pre_steps: int,
        post_steps: int,
        restrict_residual: bool,
    ) -> None:
        super().__init__()
        down = {"kernel_size": 3, "stride": 2, "padding": 1, "bias": False, "padding_mode": padding_mode}
        smooth = {"kernel_size": 3, "padding": 1, "bias": False, "padding_mode": padding_mode}
        self.restrict_u = None if finest else nn.Conv2d(u_channels, u_channels, **down)
        self.restrict_f = None if finest else nn.Conv2d(f_channels, f_channels, **down)
        # The residual f - A u of the level above is formed with an operator of its own.
        self.residual_operator = (
            nn.Conv2d(u_channels, f_channels, **smooth) if restrict_residual and not finest else None
        )
        self.pre_smoothing = nn.ModuleList(
            _SmoothingStep(u_channels, f_channels, padding_mode, first=finest and step == 0)
            for step in range(pre_steps)
        )
        self.post_smoothing = nn.ModuleList(
            _SmoothingStep(u_channels, f_channels, padding_mode, first=False) for _ in range(post_steps)
        )

    def restrict(self, u: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
        if self.residual_operator is not None:
            f = f - self.residual_operator(u)
        return self.restrict_u(u), self.restrict_f(f)

    def smooth(self, steps: nn.ModuleList, u: Tensor | None, f: Tensor) -> Tensor | None:
        for step in steps:
            u = step(u, f)
        return u


class MultigridVCycle(nn.Module):
    """The multi-channel V-cycle ``W``: ``(batch, f_channels, h, w) -> (batch, u_channels, h, w)``, linear.

    ``smoothing_steps[l]`` pre-smoothing steps on level ``l`` (finest first; at least one on the finest,
    whose first step initialises ``u``), ``post_smoothing_steps`` after the correction on every level but
    the coarsest.
    """

    def __init__(
        self,
        u_channels: int,
        f_channels: int,
        smoothing_steps: list[int],
        post_smoothing_steps: int,
        padding_mode: str,
        restrict_residual: bool,
    ) -> None:
        super().__init__()
        if smoothing_steps[0] < 1:
            raise ValueError("the finest level needs at least one smoothing step (it initialises u = S f)")
        self.padding_mode = padding_mode
        n_levels = len(smoothing_steps)
        self.levels = nn.ModuleList(
            _Level(
                u_channels,
                f_channels,
                padding_mode,
                finest=level == 0,
                pre_steps=steps,
                post_steps=post_smoothing_steps if level < n_levels - 1 else 0,
                restrict_residual=restrict_residual,
            )
            for level, steps in enumerate(smoothing_steps)
        )
        self.prolongations = nn.ModuleList(
            nn.ConvTranspose2d(u_channels, u_channels, kernel_size=4, stride=2, padding=1, bias=False)
            for _ in range(n_levels - 1)
        )

    def forward(self, f: Tensor) -> Tensor:
        states: list[tuple[Tensor, Tensor]] = []
        u: Tensor | None = None
        for level in self.levels:
            if states:
                u, f = level.restrict(*states[-1])
            u = level.smooth(level.pre_smoothing, u, f)
            states.append((u, f))
        u_coarse = states[-1][0]
        for level, prolongation, (u, f) in zip(
            reversed(self.levels[:-1]), reversed(self.prolongations), reversed(states[:-1]), strict=True
        ):
            u = u + self._prolongate(prolongation, u_coarse, u.shape[-2:])
            u_coarse = level.smooth(level.post_smoothing, u, f)
        return u_coarse

    def _prolongate(self, prolongation: nn.ConvTranspose2d, u: Tensor, fine_shape: torch.Size) -> Tensor:
        """``P u`` on the ``fine_shape`` grid.

        Without padding the transposed convolution covers fine points -1 .. 2 n; padding 1 is the crop to
        0 .. 2 n - 1, and one more point is cropped when the fine grid is odd. On a periodic grid the points
        outside are wrapped around instead of dropped.
        """
        if self.padding_mode != "circular":
            return prolongation(u)[..., : fine_shape[0], : fine_shape[1]]
        full = F.conv_transpose2d(u, prolongation.weight, stride=2)  # fine points -1 .. 2 n on each axis
        for axis, n_fine in zip((-2, -1), fine_shape, strict=True):
            positions = (torch.arange(full.shape[axis], device=u.device) - 1) % n_fine
            wrapped = full.new_zeros(*full.shape[:axis], n_fine, *full.shape[axis:][1:])
            full = wrapped.index_add_(full.dim() + axis, positions, full)
        return full


class MgNO(nn.Module):
    """``(batch, in_channels, h, w) -> (batch, out_channels, h, w)`` at any ``h, w`` (for ``levels`` levels a
    side needs ``2 ** (levels - 1)`` points for every level to be a genuine coarsening, but smaller grids run).

    ``smoothing_steps``: an integer gives that many pre-smoothing steps on every level but the coarsest,
    which gets ``coarsest_smoothing_steps``; a list gives one count per level (finest first), ``levels``
    of them. Defaults are the paper's rough-Darcy configuration.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 24,
        n_layers: int = 4,
        levels: int = 6,
        smoothing_steps: int | list[int] = 1,
        coarsest_smoothing_steps: int = 2,
        post_smoothing_steps: int = 0,
        padding_mode: Literal["zeros", "circular", "reflect", "replicate"] = "zeros",
        restrict_residual: bool = False,
        activation: Literal["gelu", "relu", "silu", "tanh", "polyrelu", "polynorm"] = "gelu",
    ) -> None:
        super().__init__()
        self.in_channels = checked_size("in_channels", in_channels, minimum=1)
        out_channels = checked_size("out_channels", out_channels, minimum=1)
        width = checked_size("width", width, minimum=1)
        n_layers = checked_size("n_layers", n_layers, minimum=1)
        steps = self._steps_per_level(smoothing_steps, levels, coarsest_smoothing_steps)
        post_smoothing_steps = checked_size("post_smoothing_steps", post_smoothing_steps, minimum=0)
        padding_mode = checked_choice("padding_mode", padding_mode, PADDING_MODES)
        self.v_cycles = nn.ModuleList(
            MultigridVCycle(
                width,
                in_channels if layer == 0 else width,
                steps,
                post_smoothing_steps,
                padding_mode,
                restrict_residual,
            )
            for layer in range(n_layers)
        )
        self.pointwise = nn.ModuleList(
            PointwiseLinear(in_channels if layer == 0 else width, width) for layer in range(n_layers)
        )
        # One activation module per layer: a learnable one (PolyCom) has its own coefficients in each.
        self.activations = nn.ModuleList(make_activation(activation) for _ in range(n_layers))
        self.output = PointwiseLinear(width, out_channels, bias=False)

    @staticmethod
    def _steps_per_level(smoothing_steps: int | list[int], levels: int, coarsest_steps: int) -> list[int]:
        levels = checked_size("levels", levels, minimum=1)
        if isinstance(smoothing_steps, Integral):  # checked_size rejects bool
            smoothing_steps = checked_size("smoothing_steps", smoothing_steps, minimum=1)
            coarsest_steps = checked_size("coarsest_smoothing_steps", coarsest_steps, minimum=1)
            return [smoothing_steps] * (levels - 1) + [coarsest_steps if levels > 1 else smoothing_steps]
        steps = [checked_size("smoothing_steps[...]", step, minimum=0) for step in smoothing_steps]
        if len(steps) != levels:
            raise ValueError(f"smoothing_steps {steps} gives {len(steps)} levels, but levels is {levels}")
        return steps

    def forward(self, x: Tensor) -> Tensor:
        check_grid_input(x, self.in_channels)
        u = x
        for v_cycle, pointwise, activation in zip(self.v_cycles, self.pointwise, self.activations, strict=True):
            u = activation(v_cycle(u) + pointwise(u))
        return self.output(u)
