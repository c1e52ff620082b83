"""DeepONet (Lu, Jin, Pang, Zhang, Karniadakis; "Learning nonlinear operators via DeepONet based on the universal
approximation theorem of operators", Nature Machine Intelligence 2021) and MultiONet (Zang & Koutsourelakis;
"DGenNO: a novel physics-aware neural operator ...", Journal of Computational Physics 2025, code yaohua32/DGenNO).

Both represent the output function at a point ``y`` through inner products of a branch net, which reads the input
function ``a`` at a fixed set of sensors, and a trunk net, which reads ``y``:

- DeepONet (unstacked): ``G(a)(y) = sum_k b_k(a) t_k(y) + b0``. The branch is an MLP (behind a CNN encoder for 2D
  inputs), linear at its output; the trunk is an MLP whose outputs are activated too (the authors' DeepXDE
  convention). Several output channels split the branch output into one group of ``n_basis`` coefficients per
  channel against one shared trunk ("split branch"). On periodic grids the trunk may read ``cos, sin(2 pi k x)``,
  ``k = 1 .. trunk_harmonics``, instead of ``x`` (the periodic DeepONet of Lu et al. 2022, CMAME 393): the
  outputs are then exactly periodic, and the trunk starts from oscillating basis functions, which an MLP of ``x``
  learns slowly.
- MultiONet: branch and trunk of the same depth and width run layer by layer; the inner products of the last
  ``sum_layers`` layers, each weighted by a learnable scalar ``w_k`` (initialised to 0, as in the authors' code),
  are averaged and a bias added: ``G(a)(y) = (1 / l) sum_k w_k <b_k(a), t_k(y)> + b``. Only ``l + 1`` parameters
  beyond a DeepONet of the same nets. Several output channels: the branch layers are ``out_channels`` times
  wider, one group of ``width`` features per channel against the shared trunk, with a ``w_k`` and ``b`` per
  channel (the split-branch rule applied at every layer; one channel is exactly the published network).

Inputs at any resolution: the input fields are sampled onto the fixed sensor grid by piecewise-linear
interpolation (``sample_on_sensors``); a sensor on a grid point takes its value exactly, so a grid that refines
the sensor grid by an integer factor (Burgers 1024 -> 128 sensors, Darcy 85 -> 29) is sampled exactly, as the
branch net expects point values of the input. Outputs at any points: ``query(x, points)`` evaluates the trunk at
arbitrary coordinates; ``forward`` is ``query`` on the coordinates of the input's own grid, so the output
resolution is free. Coordinates lie in ``[0, 1]`` per dimension, ends included (``x_j = j / (n - 1)``), or for
``periodic=True`` with the point 1 identified with 0 (``x_j = j / n``, the Burgers data's grid).

Published settings (the registry's ``paper`` presets, which the 1D and 2D variants take as their defaults):

- ``DeepONet1d``: Burgers (FNO data, 128 sensors), the DeepONet authors' setting (Lu, Meng, Cai, Mao, Goswami,
  Zhang, Karniadakis, "A comprehensive and fair comparison of two neural operators (with practical extensions)
  based on FAIR data", CMAME 393, 2022; code lu-group/deeponet-fno): branch 128 -> 128 x 3 -> 128, trunk on
  ``cos, sin(2 pi x), cos, sin(4 pi x)`` -> 128 x 2 -> 128, tanh, Glorot-normal weights, 99,713 parameters;
  Adam lr 1e-3 with inverse-time decay, full batch.
- ``DeepONet2d``: Darcy, piecewise-constant coefficient, 29 x 29 sensors (same source): CNN encoder (64, 128
  channels, kernel 5, stride 2, ReLU) -> 3200 -> 128 -> 128, trunk 2 -> 128 x 3 -> 128, ReLU, 682,753
  parameters; AdamW lr 3e-4, weight decay 1e-4. The MultiONet authors use the same network as their DeepONet
  baseline.
- ``MultiONet1d``: Burgers (DGenNO paper): 128 sensors, 5 layers of width 128 for both nets, the last 4 summed,
  branch SiLU, trunk ``silu_sin``, 148,869 parameters; Adam lr 5e-4, StepLR(400, 0.5), batch 50, 2000 epochs,
  relative L2 loss; test relative L2 0.0021 in the authors' run.
- ``MultiONet2d``: Darcy, piecewise-constant coefficient (DGenNO paper): 29 x 29 sensors, CNN encoder (128, 256
  channels, kernel 5, stride 2, SiLU) -> linear 6400 -> 256, then 5 layers of width 100, the last 4 summed,
  branch ``silu_id``, trunk ``tanh_sin``, 2,568,245 parameters; Adam lr 1e-3, StepLR(400, 0.5), batch 50, 2000
  epochs; test relative L2 0.0097 in the authors' run.

DeepONet's layers start as in DeepXDE/Keras (Glorot-normal dense and Glorot-uniform convolution weights, zero
biases); MultiONet's as in its authors' PyTorch code (PyTorch's defaults). ``init="criticality"`` starts them
instead at criticality for their activation (``W ~ N(0, C_W / fan_in)``, ``b ~ N(0, C_b)``; The Principles of
Deep Learning Theory, see ``layers/criticality.py``): these are the MLP-type operators, where the book's
layer-to-layer analysis applies as it stands. MultiONet's encoder, branch and trunk each take the values of their
own activation, which must be one the book analyses (relu, tanh, gelu, silu; not the sine-residual ones).

DeepONet takes ``parametrization="mup"`` with a ``base_width`` (``layers/mup.py``), on top of either
initialisation: in the branch and the trunk MLPs the first layer is the input layer, the layers between are hidden
and the last (to ``n_basis`` per channel, which does not grow) is the readout; each net scales by its own width
(``branch_width`` or ``trunk_width``) over the one base width. The CNN encoder's channels do not grow with these
widths: its layers keep the standard rules.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from sweeplab_modules.layers.branch_trunk import (
    BRANCH_TRUNK_ACTIVATIONS,
    ConvEncoder,
    FullyConnected,
    make_branch_trunk_activation,
    periodic_features,
)
from sweeplab_modules.layers.criticality import INITIALIZATIONS, initialize_at_criticality
from sweeplab_modules.layers.mup import parametrize_mlp
from sweeplab_modules.layers.sensors import grid_points, sample_on_sensors
from sweeplab_modules.layers.validation import check_grid_input, checked_choice, checked_size
from sweeplab_modules.operators._variants import WithVariants

__all__ = ["DeepONet", "DeepONet1d", "DeepONet2d", "MultiONet", "MultiONet1d", "MultiONet2d"]


def _inner_products(branch: Tensor, trunk: Tensor, out_channels: int) -> Tensor:
    """``<branch group c of sample b, trunk at point n of b>``: ``(B, C * p)`` and ``(B or 1, n, p)`` -> ``(B, C, n)``.

    A trunk evaluated once for all samples (batch 1) broadcasts: the grid's basis functions are computed once.
    """
    coefficients = branch.view(branch.shape[0], out_channels, -1)
    return torch.matmul(coefficients, trunk.transpose(1, 2))


def _keras_initialization(module: nn.Module) -> None:
    """DeepXDE's "Glorot normal" for dense layers, Keras' Glorot-uniform default for convolutions, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight)
    elif isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        nn.init.xavier_uniform_(module.weight)
    else:
        return
    nn.init.zeros_(module.bias)


class _BranchTrunkOperator(WithVariants, nn.Module):
    """Sensor sampling, input checks and the grid/point evaluation shared by DeepONet and MultiONet."""

    def __init__(self, *, spatial_dims: int, in_channels: int, out_channels: int, sensors: int, periodic: bool) -> None:
        super().__init__()
        self.spatial_dims = checked_size("spatial_dims", spatial_dims, minimum=1)
        self.in_channels = checked_size("in_channels", in_channels, minimum=1)
        self.out_channels = checked_size("out_channels", out_channels, minimum=1)
        self.sensors = (checked_size("sensors", sensors, minimum=2),) * spatial_dims
        if not isinstance(periodic, bool):
            raise ValueError(f"periodic must be true or false, got {periodic!r}")
        self.periodic = periodic

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in_channels, *grid) -> (batch, out_channels, *grid)``: ``query`` at the grid's own points."""
        check_grid_input(x, self.in_channels, self.spatial_dims)
        grid_shape = x.shape[2:]
        points = grid_points(grid_shape, periodic=self.periodic, device=x.device, dtype=x.dtype)
        return self.query(x, points[None]).view(x.shape[0], self.out_channels, *grid_shape)

    def query(self, x: Tensor, points: Tensor) -> Tensor:
        """The output functions of the inputs ``x`` ``(batch, in_channels, *grid)`` at ``points``
        ``(batch or 1, n_points, spatial_dims)`` (coordinates in the grid convention of the module docstring):
        ``(batch, out_channels, n_points)``. Points shared by every sample (batch 1) run the trunk once."""
        check_grid_input(x, self.in_channels, self.spatial_dims)
        if points.dim() != 3 or points.shape[2] != self.spatial_dims or points.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                f"expected points (1 or {x.shape[0]}, n_points, {self.spatial_dims}), got {tuple(points.shape)}"
            )
        sensor_values = sample_on_sensors(x, self.sensors, periodic=self.periodic)
        return self._evaluate(sensor_values, points.to(device=x.device, dtype=x.dtype))

    def _evaluate(self, sensor_values: Tensor, points: Tensor) -> Tensor:
        raise NotImplementedError

    def _encoder(self, channels: int, n_layers: int, activation: str) -> ConvEncoder:
        return ConvEncoder(
            self.in_channels,
            self.sensors,
            checked_size("encoder_channels", channels, minimum=1),
            checked_size("encoder_layers", n_layers, minimum=0),
            checked_choice("encoder_activation", activation, tuple(BRANCH_TRUNK_ACTIVATIONS)),
        )


class DeepONet(_BranchTrunkOperator):
    """DeepONet on ``spatial_dims``-dimensional grids (the module docstring). The network's sizes and activation
    have no default (the registry's presets hold the published ones); by default the trunk reads the raw
    coordinates, the branch the raw sensor values (``encoder_layers=0``), on a grid with both ends."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int,
        sensors: int,
        n_basis: int,
        branch_width: int,
        branch_layers: int,
        trunk_width: int,
        trunk_layers: int,
        trunk_harmonics: int = 0,
        encoder_channels: int = 64,
        encoder_layers: int = 0,
        activation: Literal["tanh", "relu", "gelu", "silu", "polyrelu", "polynorm"],
        periodic: bool = False,
        init: Literal["default", "criticality"] = "default",
        parametrization: Literal["standard", "mup"] = "standard",
        base_width: int | None = None,
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            sensors=sensors,
            periodic=periodic,
        )
        activation = checked_choice("activation", activation, tuple(BRANCH_TRUNK_ACTIVATIONS))
        n_basis = checked_size("n_basis", n_basis, minimum=1)
        branch_hidden = [checked_size("branch_width", branch_width, minimum=1)]
        branch_hidden *= checked_size("branch_layers", branch_layers, minimum=1) - 1
        trunk_hidden = [checked_size("trunk_width", trunk_width, minimum=1)]
        trunk_hidden *= checked_size("trunk_layers", trunk_layers, minimum=1) - 1
        self.encoder = self._encoder(encoder_channels, encoder_layers, activation)
        self.branch = FullyConnected(
            [self.encoder.out_features, *branch_hidden, n_basis * self.out_channels], activation, activate_last=False
        )
        self.trunk_harmonics = checked_size("trunk_harmonics", trunk_harmonics, minimum=0)
        if self.trunk_harmonics and not periodic:
            raise ValueError("trunk_harmonics > 0 makes the output periodic: it needs periodic=True")
        trunk_inputs = 2 * self.trunk_harmonics * spatial_dims if self.trunk_harmonics else spatial_dims
        self.trunk = FullyConnected([trunk_inputs, *trunk_hidden, n_basis], activation, activate_last=True)
        self.bias = nn.Parameter(torch.zeros(self.out_channels))
        if checked_choice("init", init, INITIALIZATIONS) == "criticality":
            initialize_at_criticality(self, activation)
        else:
            self.apply(_keras_initialization)
        for width, net in ((branch_width, self.branch), (trunk_width, self.trunk)):
            parametrize_mlp(self, net, parametrization, width, base_width)

    def _evaluate(self, sensor_values: Tensor, points: Tensor) -> Tensor:
        coefficients = self.branch(self.encoder(sensor_values))
        if self.trunk_harmonics:
            points = periodic_features(points, self.trunk_harmonics)
        return _inner_products(coefficients, self.trunk(points), self.out_channels) + self.bias[:, None]


class DeepONet1d(DeepONet, spatial_dims=1, preset=("deeponet1d", "paper")):
    """DeepONet on 1D grids; defaults: the periodic Burgers setting (registry preset ``deeponet1d.paper``)."""


class DeepONet2d(DeepONet, spatial_dims=2, preset=("deeponet2d", "paper")):
    """DeepONet on 2D grids with a CNN branch encoder; defaults: the Darcy setting (registry preset
    ``deeponet2d.paper``). ``encoder_layers=0`` feeds the raw sensor values to the branch MLP."""


class MultiONet(_BranchTrunkOperator):
    """MultiONet on ``spatial_dims``-dimensional grids (the module docstring). The network's sizes and activations
    have no default (the registry's presets hold the published ones); by default the branch reads the raw sensor
    values (``encoder_layers=0``), on a grid with both ends."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int,
        sensors: int,
        width: int,
        n_layers: int,
        sum_layers: int,
        encoder_channels: int = 32,
        encoder_layers: int = 0,
        encoder_features: int = 128,
        encoder_activation: Literal["silu", "relu", "tanh", "gelu", "polyrelu", "polynorm"] = "silu",
        branch_activation: Literal[
            "silu", "silu_id", "tanh", "relu", "gelu", "silu_sin", "tanh_sin", "polyrelu", "polynorm"
        ],
        trunk_activation: Literal[
            "silu_sin", "tanh_sin", "silu", "silu_id", "tanh", "relu", "gelu", "polyrelu", "polynorm"
        ],
        periodic: bool = False,
        init: Literal["default", "criticality"] = "default",
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            sensors=sensors,
            periodic=periodic,
        )
        width = checked_size("width", width, minimum=1)
        n_layers = checked_size("n_layers", n_layers, minimum=2)
        self.sum_layers = checked_size("sum_layers", sum_layers, minimum=1)
        if self.sum_layers >= n_layers:
            # The input layer's features never enter an inner product (the authors' code asserts the same).
            raise ValueError(f"sum_layers must be below n_layers ({n_layers}), got {sum_layers}")
        encoder = self._encoder(encoder_channels, encoder_layers, encoder_activation)
        if encoder_layers > 0:
            # The authors' CNN encoders end in one linear layer (no activation) before the branch net.
            features = checked_size("encoder_features", encoder_features, minimum=1)
            self.encoder: nn.Module = nn.Sequential(encoder, nn.Linear(encoder.out_features, features))
        else:
            features, self.encoder = encoder.out_features, encoder
        branch_width = width * self.out_channels
        self.branch_layers = nn.ModuleList(
            nn.Linear(fan_in, branch_width) for fan_in in [features] + [branch_width] * (n_layers - 1)
        )
        self.trunk_layers = nn.ModuleList(
            nn.Linear(fan_in, width) for fan_in in [spatial_dims] + [width] * (n_layers - 1)
        )
        checked_choice("branch_activation", branch_activation, tuple(BRANCH_TRUNK_ACTIVATIONS))
        checked_choice("trunk_activation", trunk_activation, tuple(BRANCH_TRUNK_ACTIVATIONS))
        # One activation module per layer: a learnable one (PolyCom) has its own coefficients in each.
        self.branch_activations = nn.ModuleList(
            make_branch_trunk_activation(branch_activation) for _ in range(n_layers)
        )
        self.trunk_activations = nn.ModuleList(make_branch_trunk_activation(trunk_activation) for _ in range(n_layers))
        if checked_choice("init", init, INITIALIZATIONS) == "criticality":
            # Each part at the criticality of the activation its layers' inputs went through.
            if encoder_layers > 0:
                initialize_at_criticality(self.encoder, encoder_activation, "encoder_activation")
            initialize_at_criticality(self.branch_layers, branch_activation, "branch_activation")
            initialize_at_criticality(self.trunk_layers, trunk_activation, "trunk_activation")
        # w_k per summed layer (and output channel), initialised to 0 as in the authors' code; one bias per channel.
        self.layer_weights = nn.Parameter(torch.zeros(self.sum_layers, self.out_channels))
        self.bias = nn.Parameter(torch.zeros(self.out_channels))

    def _evaluate(self, sensor_values: Tensor, points: Tensor) -> Tensor:
        branch, trunk = self.encoder(sensor_values), points
        first_summed = len(self.branch_layers) - self.sum_layers
        weighted_products = []
        branches = zip(self.branch_layers, self.branch_activations, strict=True)
        trunks = zip(self.trunk_layers, self.trunk_activations, strict=True)
        for index, ((branch_layer, branch_activation), (trunk_layer, trunk_activation)) in enumerate(
            zip(branches, trunks, strict=True)
        ):
            branch = branch_activation(branch_layer(branch))
            trunk = trunk_activation(trunk_layer(trunk))
            if index >= first_summed:
                weight = self.layer_weights[index - first_summed][:, None]
                weighted_products.append(weight * _inner_products(branch, trunk, self.out_channels))
        return torch.stack(weighted_products).mean(dim=0) + self.bias[:, None]


class MultiONet1d(MultiONet, spatial_dims=1, preset=("multionet1d", "paper")):
    """MultiONet on 1D grids; defaults: the DGenNO paper's Burgers setting (registry preset ``multionet1d.paper``)."""


class MultiONet2d(MultiONet, spatial_dims=2, preset=("multionet2d", "paper")):
    """MultiONet on 2D grids with a CNN branch encoder; defaults: the DGenNO paper's Darcy (piecewise-constant
    coefficient) setting (registry preset ``multionet2d.paper``)."""
