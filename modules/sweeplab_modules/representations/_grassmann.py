"""Grassmann class representation (Wang et al., ICCV 2023): every class a k-dimensional subspace of the feature
space, optimised on the Grassmann manifold."""

from __future__ import annotations

import geoopt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GrassmannClassifier", "random_frames"]


def random_frames(count: int, dim: int, rank: int) -> Tensor:
    """``count`` uniformly random orthonormal (dim, rank) frames: the Q of Gaussian matrices, signs fixed."""
    q, r = torch.linalg.qr(torch.randn(count, dim, rank))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


class GrassmannClassifier(nn.Module):
    """``logit_i = scale * ||S_i^T x / ||x|| ||`` with ``S_i`` an orthonormal (features, rank) basis of class i's
    subspace: the norm of the normalised feature's projection onto the subspace, in [0, scale].

    The bases are geoopt ``ManifoldParameter``s on the (Euclidean-metric) Stiefel manifold: a Riemannian optimiser
    projects their gradient onto the tangent space (``G - S sym(S^T G)``) and retracts by QR, so they stay
    orthonormal. The logits depend on the subspace only (``S_i Q`` for orthogonal ``Q`` gives the same), so
    ``S^T G`` is symmetric and that projection is the Grassmann manifold's ``(I - S S^T) G``: this is Riemannian
    SGD on the Grassmannian with a QR retraction, as in the paper."""

    def __init__(self, features: int, n_classes: int, rank: int = 8, scale: float = 25.0) -> None:
        super().__init__()
        if not 1 <= rank <= features:
            raise ValueError(f"rank must be in 1..{features} (the feature dimension), got {rank}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.rank, self.scale = rank, scale
        self.bases = geoopt.ManifoldParameter(
            random_frames(n_classes, features, rank), manifold=geoopt.EuclideanStiefel()
        )

    def forward(self, features: Tensor) -> Tensor:
        projections = torch.einsum("bd,cdk->bck", F.normalize(features, dim=1), self.bases)
        # clamp: the norm's gradient is undefined at a zero projection (a zero feature)
        return self.scale * projections.square().sum(dim=2).clamp_min(1e-12).sqrt()

    def extra_repr(self) -> str:
        n_classes, features, rank = self.bases.shape
        return f"features={features}, n_classes={n_classes}, rank={rank}, scale={self.scale}"
