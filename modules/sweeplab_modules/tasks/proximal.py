"""Learned proximal denoising: train a learned proximal network on (noisy, clean) pairs with the proximal-matching
loss and its schedule (Fang, Buchanan, Sulam, ICLR 2024).

Batches are ``(y, target)`` with y the noisy sample and ``target[:, :C]`` the clean one (C = y's channels). When
the data set knows the exact proximal operator for its prior (the Laplace example: soft thresholding), it stores
it applied to y as ``target[:, C:2C]`` and the task reports the learned map's distance to it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from sweeplab_modules.operators.lpn import LearnedProximalNetwork, convexity_violations
from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.training import TrainingConfig

__all__ = ["ProximalDenoising", "peak_signal_to_noise_ratio", "proximal_matching_loss"]

LOSSES = ("proximal_matching", "l1", "l2")


def proximal_matching_loss(output: Tensor, target: Tensor, gamma: float) -> Tensor:
    """Mean over samples of 1 - exp(-(||output - target|| / gamma)^2): as gamma -> 0 its minimiser is the
    posterior mode (MAP), where the l2 loss gives the posterior mean and l1 the median."""
    distance = (output - target).flatten(start_dim=1).norm(dim=1)
    return (1.0 - torch.exp(-((distance / gamma) ** 2))).mean()


def peak_signal_to_noise_ratio(output: Tensor, target: Tensor, peak: float = 1.0) -> Tensor:
    """Mean over images of 10 log10(peak^2 / MSE), images in [0, peak]."""
    mse = (output - target).flatten(start_dim=1).pow(2).mean(dim=1).clamp_min(1e-12)
    return (10.0 * torch.log10(peak**2 / mse)).mean()


def _pointwise_loss(name: str, output: Tensor, target: Tensor) -> Tensor:
    difference = output - target
    return difference.abs().mean() if name == "l1" else difference.pow(2).mean()


class ProximalDenoising(SweepTask):
    """Trains a ``LearnedProximalNetwork`` as a denoiser; the weights are clamped after every optimiser step.

    Losses: ``proximal_matching`` (default: the model's ``schedule``, pretraining with l1 or l2 and then matching
    with gamma lowered in stages, the learning rate scaled by its ``matching_lr_factor`` when matching starts,
    on top of the study's scheduler), or ``l1`` / ``l2`` throughout (the baselines: posterior median / mean). No
    normalisation: a proximal operator is tied to the scale of its inputs.

    Logs ``train_loss``; on validation and test ``<stage>_loss`` (for proximal matching: at the final gamma,
    comparable across epochs), ``<stage>_mse``, ``<stage>_psnr`` (images only, peak 1), ``<stage>_prox_error``
    (mean absolute distance to the exact proximal operator, where the data set stores it) and
    ``<stage>_convexity_violation`` (``convexity_violations`` of the potential on the split's inputs).
    """

    LOSSES = LOSSES

    def __init__(
        self, model: LearnedProximalNetwork, training: TrainingConfig, in_channels: int, out_channels: int
    ) -> None:
        super().__init__(model, training)
        self.model: LearnedProximalNetwork
        self.channels = in_channels

    @property
    def total_steps(self) -> int:
        return max(1, int(self.trainer.estimated_stepping_batches))

    def _loss(self, output: Tensor, clean: Tensor, gamma: float | None) -> Tensor:
        """The training loss: l1 or l2, or proximal matching at ``gamma`` per sqrt(dimension)."""
        if gamma is None:
            name = self.loss_name if self.loss_name != "proximal_matching" else self.model.schedule.pretrain_loss
            return _pointwise_loss(name, output, clean)
        return proximal_matching_loss(output, clean, gamma * math.sqrt(clean[0].numel()))

    def _gamma(self, stage: str) -> float | None:
        if self.loss_name != "proximal_matching":
            return None
        if stage == "train":
            return self.model.schedule.gamma_at(self.global_step, self.total_steps)
        return self.model.schedule.gamma_end

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        noisy, target = batch
        clean = target[:, : self.channels]
        output = self.model(noisy)
        loss = self._loss(output, clean, self._gamma(stage))
        self.log_epoch_mean(f"{stage}_loss", loss, len(noisy))
        if stage != "train":
            self._log_evaluation(stage, noisy, output.detach(), target)
        return loss

    def _log_evaluation(self, stage: str, noisy: Tensor, output: Tensor, target: Tensor) -> None:
        n, clean = len(noisy), target[:, : self.channels]
        self.log_epoch_mean(f"{stage}_mse", (output - clean).pow(2).mean(), n)
        if noisy.ndim > 2:
            self.log_epoch_mean(f"{stage}_psnr", peak_signal_to_noise_ratio(output, clean), n)
        if target.shape[1] == 2 * self.channels:
            reference = target[:, self.channels :]
            self.log_epoch_mean(f"{stage}_prox_error", (output - reference).abs().mean(), n)
        self.log_epoch_mean(f"{stage}_convexity_violation", convexity_violations(self.model, noisy), n)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.model.clamp_weights()

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        # The schedule's factor applies to the step only, on top of whatever rate the study's scheduler set.
        factor = 1.0
        if self.loss_name == "proximal_matching":
            factor = self.model.schedule.lr_factor_at(self.global_step, self.total_steps)
        for group in optimizer.param_groups:
            group["lr"] *= factor
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        for group in optimizer.param_groups:
            group["lr"] /= factor
