"""Contrastive losses: pure functions of embeddings (no module state).

SupCon (Khosla et al. 2020, the "L_out" form) over the 2N views of a batch: for each view i, the positives P(i)
are the other views with the same label, the denominator runs over every view but i itself, and the loss is
``-mean_i 1/|P(i)| sum_{p in P(i)} log softmax_i(sim / T)[p]``. SimCLR's NT-Xent (Chen et al. 2020) is the special
case in which every sample is its own class: the only positive of a view is the other view of the same sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["nt_xent", "supervised_contrastive"]


def supervised_contrastive(z1: Tensor, z2: Tensor, labels: Tensor, temperature: float = 0.1) -> Tensor:
    """Supervised contrastive loss of two views ``z1``, ``z2`` (batch, dim) of samples with class ``labels``."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"expected two views of shape (batch, dim), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if labels.shape != (z1.shape[0],):
        raise ValueError(f"expected one label per sample ({z1.shape[0]}), got shape {tuple(labels.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    views = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    view_labels = torch.cat([labels, labels])
    n = views.shape[0]
    not_self = ~torch.eye(n, dtype=torch.bool, device=views.device)
    logits = (views @ views.T / temperature).masked_fill(~not_self, float("-inf"))
    log_probability = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (view_labels[:, None] == view_labels[None, :]) & not_self
    # Every view has at least its twin as a positive, so the count is never zero.
    positive_log_probability = log_probability.masked_fill(~positives, 0.0).sum(dim=1)
    return -(positive_log_probability / positives.sum(dim=1)).mean()


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy of two views ``z1``, ``z2`` (batch, dim)."""
    return supervised_contrastive(z1, z2, torch.arange(z1.shape[0], device=z1.device), temperature)
