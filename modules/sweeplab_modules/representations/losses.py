"""Contrastive losses: pure functions of embeddings (no module state).

SupCon (Khosla et al. 2020, the "L_out" form) over the 2N views of a batch: for each view i, the positives P(i)
are the other views with the same label, the denominator runs over every view but i itself, and the loss is
``-mean_i 1/|P(i)| sum_{p in P(i)} log softmax_i(sim / T)[p]``. SimCLR's NT-Xent (Chen et al. 2020) is the special
case in which every sample is its own class: the only positive of a view is the other view of the same sample.

Hydra / SimLAP's loss (Wu et al., "Rethinking Positive Pairs in Contrastive Learning", arXiv 2410.18200) makes any
pair of samples a positive through a class-pair gate on the anchor's embedding.

The higher-order compatibility loss (HOC) of stationary representations (Biondi et al., CVPR 2024, Eq. 4) ties a
new model's features to a frozen old model's on the same samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["hoc_loss", "hydra_loss", "nt_xent", "supervised_contrastive"]


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


def hoc_loss(new_features: Tensor, old_features: Tensor, labels: Tensor, mu: float = 10.0) -> Tensor:
    """Higher-order compatibility of ``new_features`` with ``old_features`` (batch, dim) of the same samples.

    With both L2-normalised and ``s_ij = mu <old_i, new_j>``, each anchor ``i`` is pulled to its own old feature and
    pushed from the old features of the other classes: ``-s_ii + logsumexp_j(s_ij [y_i != y_j])``, averaged. As in
    the authors' code, the same-class entries (the diagonal among them) are set to 0, not removed: each still adds
    ``exp(0)`` to the sum, a constant floor that keeps the loss bounded below when a batch has few negatives.
    Gradients reach ``new_features`` only when ``old_features`` comes from a frozen model (detach it otherwise).
    """
    if new_features.shape != old_features.shape or new_features.ndim != 2:
        raise ValueError(
            f"expected new and old features of one shape (batch, dim), got {tuple(new_features.shape)} and "
            f"{tuple(old_features.shape)}"
        )
    if labels.shape != (new_features.shape[0],):
        raise ValueError(f"expected one label per sample ({new_features.shape[0]}), got shape {tuple(labels.shape)}")
    if mu <= 0:
        raise ValueError(f"mu must be > 0, got {mu}")
    new, old = F.normalize(new_features.float(), dim=1), F.normalize(old_features.float(), dim=1)
    similarity = mu * old @ new.T  # rows: old features (anchors), columns: new features
    other_class = labels[:, None] != labels[None, :]
    return (torch.logsumexp(similarity * other_class, dim=1) - similarity.diagonal()).mean()


def hydra_loss(
    z1: Tensor, z2: Tensor, labels: Tensor, partner_labels: Tensor, gates: Tensor, logit_scale: Tensor | float
) -> Tensor:
    """Contrast of anchors ``z1`` with keys ``z2`` (two views of the same batch) where anchor ``i`` of class
    ``labels[i]`` is paired with class ``partner_labels[i]``, through the gate ``gates[i]`` in (0, 1)^dim of that
    class pair.

    ``l_ij = logit_scale <g_i^2 z1_i, z2_j>`` on L2-normalised embeddings; the positives of anchor ``i`` are the
    keys of class ``partner_labels[i]``, its negatives the keys of every other class except its own; each positive
    contributes ``log(exp l_ij + sum_neg exp l_ik) - l_ij`` and the loss is the mean over all positive entries.
    With ``partner_labels == labels`` and all gates 1 this is a supervised contrastive loss; with other partners
    the gate selects the dimensions the two classes may share.
    """
    if z1.shape != z2.shape or z1.ndim != 2 or gates.shape != z1.shape:
        raise ValueError(
            f"expected views and gates of one shape (batch, dim), got {tuple(z1.shape)}, {tuple(z2.shape)} and "
            f"{tuple(gates.shape)}"
        )
    if labels.shape != (z1.shape[0],) or partner_labels.shape != labels.shape:
        raise ValueError(f"expected one label and one partner label per sample ({z1.shape[0]})")
    anchors, keys = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    logits = logit_scale * (gates.float().square() * anchors) @ keys.T
    positives = labels[None, :] == partner_labels[:, None]
    if not positives.any(dim=1).all():
        raise ValueError("every partner label must be the label of some sample in the batch")
    negatives = ~(positives | (labels[None, :] == labels[:, None]))
    negative_sum = torch.logsumexp(logits.masked_fill(~negatives, float("-inf")), dim=1, keepdim=True)
    per_pair = torch.logaddexp(logits, negative_sum) - logits  # a row without negatives costs 0
    return per_pair[positives].mean()
