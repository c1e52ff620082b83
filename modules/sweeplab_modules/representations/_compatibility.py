"""Compatibility of successive models (Shen et al. 2020; Biondi et al., CVPR 2024): can queries embedded by a new
model be searched against a gallery embedded by an old one? Numpy only."""

from __future__ import annotations

import numpy as np

__all__ = ["average_compatibility", "average_multimodel_accuracy", "empirical_compatibility", "search_accuracy"]


def search_accuracy(
    query_features: np.ndarray, query_labels: np.ndarray, gallery_features: np.ndarray, gallery_labels: np.ndarray
) -> float:
    """1:N search accuracy: each query is assigned the class of the nearest class template (the mean gallery
    feature of the class, L2-normalised) by inner product, as in the iamcl2r evaluation."""
    classes = np.unique(gallery_labels)
    templates = np.stack([gallery_features[gallery_labels == c].mean(axis=0) for c in classes])
    templates /= np.linalg.norm(templates, axis=1, keepdims=True).clip(min=1e-12)
    predicted = classes[np.argmax(query_features @ templates.T, axis=1)]
    return float(np.mean(predicted == query_labels))


def empirical_compatibility(matrix: np.ndarray, new: int, old: int) -> float:
    """How much cross-model search (queries by model ``new``, gallery by ``old``) beats the old model searching
    its own gallery: ``C[new, old] - C[old, old]``; the empirical compatibility criterion holds when positive."""
    return float(matrix[new, old] - matrix[old, old])


def average_compatibility(matrix: np.ndarray) -> float:
    """AC: the fraction of pairs ``i > j`` that satisfy the empirical compatibility criterion (1 for one model)."""
    steps = matrix.shape[0]
    pairs = [(i, j) for i in range(steps) for j in range(i)]
    if not pairs:
        return 1.0
    return sum(empirical_compatibility(matrix, i, j) > 0 for i, j in pairs) / len(pairs)


def average_multimodel_accuracy(matrix: np.ndarray) -> float:
    """AM: the mean of the lower triangle of the compatibility matrix, diagonal included."""
    return float(matrix[np.tril_indices(matrix.shape[0])].mean())
