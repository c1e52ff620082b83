"""Projection heads: trained on the contrastive loss, then discarded (downstream tasks use the encoder's features)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sweeplab_modules.representations._householder import HouseholderProjector

__all__ = ["HEADS", "ReweightHead", "make_head"]

HEADS: tuple[str, ...] = ("none", "linear", "mlp", "reweight", "householder")


class ReweightHead(nn.Module):
    """Xue et al. (ICLR 2024)'s fixed reweighting head: ``z_i = h_i * kappa^-i``, not trained.

    It weights the features unequally, as the layers of a trained projection head do, so that the encoder's own
    features stay more even; ``kappa = 1`` is the identity (no head)."""

    def __init__(self, features: int, kappa: float) -> None:
        super().__init__()
        if kappa < 1:
            raise ValueError(f"kappa must be >= 1, got {kappa}")
        self.register_buffer("weights", kappa ** -torch.arange(features, dtype=torch.float32))

    def forward(self, h: Tensor) -> Tensor:
        return h * self.weights


def make_head(kind: str, features: int, projection_dim: int, kappa: float, householder_rank: int) -> nn.Module:
    """A head from encoder features (``features``) to the space the loss sees.

    ``mlp`` is SimCLR's (linear, ReLU, linear, hidden width = ``features``); ``reweight`` and ``none`` keep the
    dimension; ``householder`` is a rank-``householder_rank`` projector with unit singular values.
    """
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(features, projection_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(features, features), nn.ReLU(), nn.Linear(features, projection_dim))
    if kind == "reweight":
        return ReweightHead(features, kappa)
    if kind == "householder":
        return HouseholderProjector(features, projection_dim, householder_rank)
    raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
