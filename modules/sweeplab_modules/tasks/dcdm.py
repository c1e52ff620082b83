"""Training the network of the Deep Conjugate Direction Method (Kaneda et al., ICML 2023) on Darcy/Poisson systems.

Batches are ``(x, y)`` on the nodal grid of the system: ``x[:, 0]`` a right-hand side b (a residual-like vector,
zero on the boundary, unit norm), ``x[:, 1]`` the coefficient a of -div(a grad u) that assembles A, and ``y[:, 0]``
the exact solution A^-1 b (for the metrics only). The paper's loss is unsupervised: with q = f(b) and its optimal
scaling x_hat = (q . b) / (q . A q) q, the loss is ||b - A x_hat||^2, averaged over the batch; its minimiser points
f along A^-1 b, whatever its scale. A is applied as the finite-difference operator of ``darcy_operator``, which
is the matrix of ``sweeplab.datagen.darcy.darcy_system`` (a test checks they agree).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.training import TrainingConfig

__all__ = ["ConjugateDirectionLearning", "darcy_operator"]


def darcy_operator(coefficient: Tensor, u: Tensor) -> Tensor:
    """h^2 times -div(a grad u) at the interior nodes, (batch, n-2, n-2), for nodal a and u of shape (batch, n, n),
    u zero on the boundary: 5-point differences with each face's coefficient the mean of its two nodes."""
    faces_0 = 0.5 * (coefficient[:, :-1, :] + coefficient[:, 1:, :])
    faces_1 = 0.5 * (coefficient[:, :, :-1] + coefficient[:, :, 1:])
    flux_0 = faces_0 * (u[:, 1:, :] - u[:, :-1, :])
    flux_1 = faces_1 * (u[:, :, 1:] - u[:, :, :-1])
    return flux_0[:, :-1, 1:-1] - flux_0[:, 1:, 1:-1] + flux_1[:, 1:-1, :-1] - flux_1[:, 1:-1, 1:]


def _dot(u: Tensor, v: Tensor) -> Tensor:
    return (u * v).flatten(start_dim=1).sum(dim=1)


class ConjugateDirectionLearning(SweepTask):
    """Trains a DCDM network with the paper's loss (``loss: residual``, the only one).

    ``forward`` is the trained direction model: (batch, 2, n, n) = (residual, coefficient) -> (batch, 1, n, n),
    zero on the boundary. Logs ``<stage>_loss`` and, on validation and test, ``<stage>_rel_residual``
    (||b - A x_hat|| / ||b||: how far one DCDM step from zero gets) and ``<stage>_energy_error``
    (||x_hat - A^-1 b||_A / ||A^-1 b||_A; 0 when f(b) is parallel to A^-1 b). No normalisation: the loss is
    invariant to the scale of the output, and the solver feeds unit-norm residuals as in training.
    """

    LOSSES = ("residual",)

    def __init__(self, model: nn.Module, training: TrainingConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(model, training)

    def forward(self, x: Tensor) -> Tensor:
        # The network sees the residual at unit RMS and log a less its mean: the direction A^-1 r does not depend
        # on the scale of either, and a residual of unit norm (entries ~ 1/n) beside a coefficient of 3 - 12
        # would leave the first convolution blind to the residual (training stalled at loss 0.998, measured).
        residual, coefficient = x[:, :1], x[:, 1:]
        unknowns = (x.shape[-2] - 2) * (x.shape[-1] - 2)
        rms = residual.flatten(start_dim=1).norm(dim=1).clamp_min(1e-30) / unknowns**0.5
        log_coefficient = coefficient.log()
        log_coefficient = log_coefficient - log_coefficient.mean(dim=(-2, -1), keepdim=True)
        direction = self.model(torch.cat([residual / rms[:, None, None, None], log_coefficient], dim=1))
        interior = torch.zeros_like(direction)
        interior[..., 1:-1, 1:-1] = 1.0
        return direction * interior

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        rhs, coefficient = x[:, 0, 1:-1, 1:-1], x[:, 1]
        direction = self(x)[:, 0]
        product = darcy_operator(coefficient, direction)
        step = _dot(direction[:, 1:-1, 1:-1], rhs) / _dot(direction[:, 1:-1, 1:-1], product).clamp_min(1e-30)
        residual = rhs - step[:, None, None] * product
        squared = _dot(residual, residual) / _dot(rhs, rhs)
        loss = squared.mean()
        self.log_epoch_mean(f"{stage}_loss", loss, len(x))
        if stage != "train":
            self.log_epoch_mean(f"{stage}_rel_residual", squared.detach().sqrt().mean(), len(x))
            error = step.detach()[:, None, None] * direction.detach() - y[:, 0]
            energy = _dot(error[:, 1:-1, 1:-1], darcy_operator(coefficient, error))
            reference = _dot(y[:, 0, 1:-1, 1:-1], darcy_operator(coefficient, y[:, 0]))
            self.log_epoch_mean(f"{stage}_energy_error", (energy / reference).sqrt().mean(), len(x))
        return loss
