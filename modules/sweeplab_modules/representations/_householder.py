"""Householder projector (Song et al., ICCV 2023): a learned rank-k map whose nonzero singular values are exactly 1."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["HouseholderProjector", "householder_frame"]


def householder_frame(vectors: Tensor, size: int) -> Tensor:
    """The first ``k`` columns of ``H(v_1) H(v_2) ... H(v_k)``, ``H(v) = I - 2 v v^T / (v^T v)``: an orthonormal
    ``(size, k)`` frame for the ``k`` columns of ``vectors`` (size, k), computed without forming a size x size matrix.
    """
    frame = torch.eye(size, vectors.shape[1], dtype=vectors.dtype, device=vectors.device)
    for v in reversed(vectors.unbind(dim=1)):  # the rightmost reflection acts first
        frame = frame - (2.0 / (v @ v)) * torch.outer(v, v @ frame)
    return frame


class HouseholderProjector(nn.Module):
    """``x -> A x`` with ``A = Q(U) S Q(V)^T``: ``Q(.)`` a product of Householder reflections, one per column of
    ``U`` (out x rank) or ``V`` (in x rank), and ``S`` ones on the first ``rank`` diagonal entries. ``A`` has rank
    ``rank`` and all its nonzero singular values are 1; only ``U`` and ``V`` are learned."""

    def __init__(self, in_features: int, out_features: int, rank: int) -> None:
        super().__init__()
        if not 1 <= rank <= min(in_features, out_features):
            raise ValueError(f"rank must be in 1..{min(in_features, out_features)}, got {rank}")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        # Gaussian reflection vectors give a uniformly random frame (an orthogonal init, as without a pretrained
        # weight to take an SVD of).
        self.left = nn.Parameter(torch.randn(out_features, rank))
        self.right = nn.Parameter(torch.randn(in_features, rank))

    @property
    def weight(self) -> Tensor:
        """The (out_features, in_features) matrix A."""
        return householder_frame(self.left, self.out_features) @ householder_frame(self.right, self.in_features).T

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight.T

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"
