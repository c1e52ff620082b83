"""Relative representations (Moschella et al., ICLR 2023): a sample described by its cosines to fixed anchors."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RelativeProjection"]


class RelativeProjection(nn.Module):
    """``r(x) = [cos(e(x), e(a_1)), ..., cos(e(x), e(a_m))]`` from the embeddings of samples and of anchors.

    Parameter-free: invariant to any rotation, reflection or rescaling of the embedding space, which is what
    lets a decoder trained on one encoder's relative space read another's.
    """

    def forward(self, embeddings: Tensor, anchor_embeddings: Tensor) -> Tensor:
        if embeddings.shape[1:] != anchor_embeddings.shape[1:]:
            raise ValueError(
                f"samples {tuple(embeddings.shape)} and anchors {tuple(anchor_embeddings.shape)} differ in dimension"
            )
        return F.normalize(embeddings, dim=1) @ F.normalize(anchor_embeddings, dim=1).T
