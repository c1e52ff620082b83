"""Hydra / SimLAP's class-pair feature filter (Wu et al., "Rethinking Positive Pairs in Contrastive Learning"):
any two classes may form a positive pair, compared only on the dimensions their gate keeps open."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["PAIRINGS", "PairGate", "draw_partners"]

PAIRINGS: tuple[str, ...] = ("arbitrary", "identical", "distinct")


class PairGate(nn.Module):
    """``g(y1, y2) = sigmoid(MLP((E[y1] + E[y2]) / 2))`` in (0, 1)^``out_dim``: a learned embedding per class,
    the pair's mean (symmetric in the two classes) through ReLU, BN, Linear, ReLU, BN, Linear."""

    def __init__(self, n_classes: int, out_dim: int, embedding_dim: int = 64, hidden: int = 128) -> None:
        super().__init__()
        if min(n_classes, out_dim, embedding_dim, hidden) < 1:
            raise ValueError(f"gate sizes must be >= 1, got {n_classes}, {out_dim}, {embedding_dim}, {hidden}")
        self.embedding = nn.Embedding(n_classes, embedding_dim)
        self.mlp = nn.Sequential(
            nn.ReLU(),
            nn.BatchNorm1d(embedding_dim),
            nn.Linear(embedding_dim, hidden),
            nn.ReLU(),
            nn.BatchNorm1d(hidden),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, labels: Tensor, partner_labels: Tensor) -> Tensor:
        pair = (self.embedding(labels) + self.embedding(partner_labels)) / 2
        return torch.sigmoid(self.mlp(pair))


def draw_partners(
    labels: Tensor, pairing: Literal["arbitrary", "identical", "distinct"], generator: torch.Generator | None = None
) -> Tensor:
    """The class each sample is paired with, drawn from the batch's labels: ``arbitrary`` a random permutation of
    them (any pair, the same class included), ``identical`` the sample's own class, ``distinct`` a random other
    sample's class that differs from its own (its own where the batch has no other class)."""
    if pairing == "identical":
        return labels.clone()
    n = labels.shape[0]
    if pairing == "arbitrary":
        return labels[torch.randperm(n, generator=generator, device=labels.device)]
    if pairing == "distinct":
        other = labels[None, :] != labels[:, None]
        weights = torch.where(other.any(dim=1, keepdim=True), other.float(), torch.eye(n, device=labels.device))
        return labels[torch.multinomial(weights, 1, generator=generator).squeeze(1)]
    raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
