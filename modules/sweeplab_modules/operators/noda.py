"""Semilinear neural operator with observer-style correction (NODA; Singh, Borsoi, Erdogmus, Imbiriba, "Learning
semilinear neural operators: a unified recursive framework for prediction and data assimilation", ICLR 2024).

For u_t = L u + N(u) with observations y = C u + noise, a Luenberger-type observer in function space adds
K (y - C u) to the dynamics; discretised, each step of the recursion is

    prediction:  u_k^f = u_{k-1}^a + F_theta(u_{k-1}^a)                       (residual neural-operator step)
    correction:  u_k^a = u_k^f + K_theta(u_k^f, e_k),  e_k = M_k (y_k - E_theta(u_k^f))

with M_k the observation mask at step k (sparse sensors, irregular times), E_theta a learned pointwise map from
state to measurement space and K_theta a learned gain operator that spreads the sparse innovation e_k (with the
state and the mask) into a correction field. A step without observations skips the correction exactly (pure
forecast), so the same network predicts and assimilates. F_theta and K_theta are FNO-1D stacks (lift, Fourier
layers with GELU, two-layer projection) on the periodic grid, without coordinate features (the dynamics are
translation invariant).

Input layout (the ``kdv`` / ``kuramoto_sivashinsky`` data sets, in the state's normalised units): channel 0 the
initial state, channels 1 .. H the observation values, channels H + 1 .. 2H the sensor ranks (> 0 where
observed); output: the H analysed states u_1^a .. u_H^a.

The authors' code was not found and their layer sizes could not be read: preset ``reference`` uses FNO-1D's
published size (width 64, 16 modes, 4 layers) for both operators, ``small`` a CPU size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sweeplab_modules.layers import FourierLayer, PointwiseLinear, PointwiseMLP

__all__ = ["SemilinearNeuralOperator"]


class _FNOStack(nn.Module):
    def __init__(self, in_channels: int, width: int, modes: int, n_layers: int) -> None:
        super().__init__()
        self.lift = PointwiseLinear(in_channels, width)
        self.layers = nn.Sequential(
            *[FourierLayer(width, [modes], nn.GELU() if i < n_layers - 1 else None) for i in range(n_layers)]
        )
        self.project = PointwiseMLP(width, 2 * width, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.layers(self.lift(x)))


class SemilinearNeuralOperator(nn.Module):
    """Prediction by a residual FNO step, correction from the innovation of the observations (see module)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        modes: int = 16,
        n_layers: int = 4,
        gain_width: int = 64,
        gain_layers: int = 4,
        measurement_width: int = 32,
    ) -> None:
        super().__init__()
        if in_channels != 1 + 2 * out_channels:
            raise ValueError(
                f"expected 1 + 2 x {out_channels} input channels (state, observation values, sensor ranks), "
                f"got {in_channels}"
            )
        if min(width, modes, n_layers, gain_width, gain_layers, measurement_width) < 1:
            raise ValueError("widths, modes and layer counts must be >= 1")
        self.horizon = out_channels
        self.dynamics = _FNOStack(1, width, modes, n_layers)
        self.gain = _FNOStack(3, gain_width, modes, gain_layers)
        self.measurement = PointwiseMLP(1, measurement_width, 1)

    def step(self, state: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        """One prediction-correction step from ``state`` (batch, 1, n) with observations ``values`` where ``mask``."""
        forecast = state + self.dynamics(state)
        innovation = mask * (values - self.measurement(forecast))
        correction = self.gain(torch.cat([forecast, innovation, mask], dim=1))
        observed = mask.flatten(start_dim=1).any(dim=1).to(forecast.dtype).view(-1, 1, 1)
        return forecast + observed * correction

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[1] != 1 + 2 * self.horizon:
            raise ValueError(f"expected input (batch, {1 + 2 * self.horizon}, n), got {tuple(x.shape)}")
        state = x[:, :1]
        values, masks = x[:, 1 : 1 + self.horizon], (x[:, 1 + self.horizon :] > 0).to(x.dtype)
        states = []
        for k in range(self.horizon):
            state = self.step(state, values[:, k : k + 1], masks[:, k : k + 1])
            states.append(state)
        return torch.cat(states, dim=1)
