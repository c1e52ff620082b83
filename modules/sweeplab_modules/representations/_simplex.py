"""The d-Simplex fixed classifier of stationary representations (Biondi et al., CVPR 2024)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["SimplexClassifier", "simplex_vertices"]


def simplex_vertices(n_classes: int) -> Tensor:
    """The ``n_classes`` unit vertices of a regular simplex centred at the origin in ``n_classes - 1`` dimensions,
    one per row: every pair has cosine ``-1 / (n_classes - 1)``, the largest possible equal separation."""
    if n_classes < 2:
        raise ValueError(f"a simplex needs at least 2 classes, got {n_classes}")
    d = n_classes - 1
    vertices = torch.zeros(n_classes, d, dtype=torch.float64)
    vertices[:d] = torch.eye(d, dtype=torch.float64)
    vertices[d] = (1.0 - math.sqrt(n_classes)) / d
    vertices -= vertices.mean(dim=0)
    return (vertices / vertices.norm(dim=1, keepdim=True)).float()


class SimplexClassifier(nn.Module):
    """Bias-free logits ``features @ W^T`` with ``W`` the simplex vertices, fixed (a buffer: never trained).

    Classes are allocated up front (``n_classes`` may exceed the classes seen so far), so the classifier, and
    with it the feature space the backbone is trained towards, stays the same as classes arrive.
    """

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("weight", simplex_vertices(n_classes))

    @property
    def feature_dim(self) -> int:
        return self.weight.shape[1]

    def forward(self, features: Tensor) -> Tensor:
        return features @ self.weight.T
