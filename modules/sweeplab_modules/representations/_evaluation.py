"""Downstream evaluation of frozen features: a linear probe and a k-nearest-neighbour classifier."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["knn_accuracy", "linear_probe_accuracy"]


def linear_probe_accuracy(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor, c: float = 1.0
) -> float:
    """Accuracy on the test features of a multinomial logistic regression (L2 penalty ``1 / c``) fitted on the
    training features: the linear evaluation protocol, on frozen features.

    The features are centred and divided by one scalar, their root-mean-square spread, not standardised feature
    by feature: per-feature scaling would undo exactly the unequal weighting of features that a projection head
    (the fixed reweighting head above all) imposes, and make pre- and post-projection probes agree."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x_train = train_features.detach().double().cpu().numpy()
    x_test = test_features.detach().double().cpu().numpy()
    y_train = train_labels.cpu().numpy()
    if np.unique(y_train).size < 2:
        raise ValueError("a linear probe needs at least two classes in the training features")
    mean = x_train.mean(axis=0)
    scale = max(float(np.sqrt(np.mean((x_train - mean) ** 2))), 1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a probe capped at max_iter is still a probe
        probe = LogisticRegression(C=c, max_iter=500).fit((x_train - mean) / scale, y_train)
    return float(np.mean(probe.predict((x_test - mean) / scale) == test_labels.cpu().numpy()))


def knn_accuracy(
    train_features: Tensor, train_labels: Tensor, test_features: Tensor, test_labels: Tensor, k: int = 20
) -> float:
    """Accuracy of a majority vote among the ``k`` training samples nearest in cosine similarity (ties go to the
    class with the larger summed similarity)."""
    if train_features.shape[0] < k:
        k = train_features.shape[0]
    similarity = F.normalize(test_features.float(), dim=1) @ F.normalize(train_features.float(), dim=1).T
    top_similarity, top_index = similarity.topk(k, dim=1)
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    votes = torch.zeros(test_features.shape[0], n_classes, device=test_features.device)
    votes.scatter_add_(1, train_labels[top_index], torch.ones_like(top_similarity))
    # A tie in counts is broken by similarity: add it scaled below one vote.
    tie_break = torch.zeros_like(votes).scatter_add_(1, train_labels[top_index], top_similarity.clamp_min(0))
    predicted = (votes + tie_break / (k + 1)).argmax(dim=1)
    return float((predicted == test_labels).float().mean())
