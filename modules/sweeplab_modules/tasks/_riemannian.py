"""Riemannian optimisation for tasks whose models hold parameters on a manifold (geoopt ``ManifoldParameter``s).

geoopt (maintained, tested) supplies the retractions and the momentum transport, and its optimisers treat plain
parameters exactly as torch's SGD and Adam do: one optimiser for the whole model, so Lightning's automatic
optimisation and the study's schedules apply unchanged."""

from __future__ import annotations

import geoopt
import torch
from torch import nn

from sweeplab_modules.training import TrainingConfig

__all__ = ["riemannian_optimizer"]


def riemannian_optimizer(module: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """geoopt's RiemannianSGD (``sgd``) or RiemannianAdam (``adam``) over ``module``'s trainable parameters; the
    manifold parameters in a group of their own without weight decay (an L2 pull towards 0 leaves the manifold)."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    on_manifold = [p for p in trainable if isinstance(p, geoopt.ManifoldParameter)]
    euclidean = [p for p in trainable if not isinstance(p, geoopt.ManifoldParameter)]
    groups = [{"params": euclidean}, {"params": on_manifold, "weight_decay": 0.0}]
    groups = [group for group in groups if group["params"]]
    if config.optimizer == "sgd":
        return geoopt.optim.RiemannianSGD(
            groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, stabilize=None
        )
    if config.optimizer == "adam":
        return geoopt.optim.RiemannianAdam(groups, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"Riemannian optimisation supports the sgd and adam optimisers, got {config.optimizer!r}")
