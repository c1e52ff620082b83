"""Centred kernel alignment (Kornblith et al. 2019) between two sets of features of the same samples.

Numpy only (torch tensors on the CPU are accepted), so a report can call it on stored activations. Features are
(samples, features) matrices; the two may differ in width. Computed in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["cka_matrix", "linear_cka"]


def _features(x: Any, name: str) -> np.ndarray:
    array = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if array.ndim > 2:  # activation maps: one feature per channel and position
        array = array.reshape(array.shape[0], -1)
    if array.ndim != 2 or not np.isfinite(array).all():
        raise ValueError(f"{name} must be a finite (samples, features) matrix, got shape {array.shape}")
    return array


def _unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741 - the kernel names of the paper
    """Song et al. (2012)'s unbiased HSIC estimator of Gram matrices ``k``, ``l`` (diagonals zeroed here)."""
    n = k.shape[0]
    k, l = k.copy(), l.copy()  # noqa: E741
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l, 0.0)
    ones_k, ones_l = k.sum(axis=0), l.sum(axis=0)
    value = np.sum(k * l) + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * ones_k @ ones_l
    return float(value / (n * (n - 3)))


def linear_cka(x: Any, y: Any, debiased: bool = False) -> float:
    """Linear CKA of features ``x`` (n, p) and ``y`` (n, q) of the same n samples, in [0, 1].

    ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on column-centred features: 1 for identical features, invariant
    to orthogonal transforms and isotropic scaling of either. ``debiased`` uses the unbiased HSIC estimator
    (Song et al. 2012; Kornblith et al.'s debiased CKA), whose value does not drift upward for small n relative
    to the width; it needs n > 3 and may be slightly negative for unrelated features.
    """
    x, y = _features(x, "x"), _features(y, "y")
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x and y must describe the same samples, got {n} and {y.shape[0]} rows")
    if debiased:
        if n < 4:
            raise ValueError(f"debiased CKA needs at least 4 samples, got {n}")
        k, l = x @ x.T, y @ y.T  # noqa: E741
        denominator = np.sqrt(_unbiased_hsic(k, k) * _unbiased_hsic(l, l))
        return float(_unbiased_hsic(k, l) / denominator) if denominator > 0 else float("nan")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    denominator = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    if denominator == 0:
        return float("nan")  # a constant feature set: similarity undefined
    return float(np.linalg.norm(y.T @ x) ** 2 / denominator)


def cka_matrix(features_a: list[Any], features_b: list[Any] | None = None, debiased: bool = False) -> np.ndarray:
    """CKA between every pair of layers (or models): ``[i, j] = linear_cka(features_a[i], features_b[j])``;
    ``features_b`` defaults to ``features_a`` (a symmetric layer-by-layer matrix)."""
    features_b = features_a if features_b is None else features_b
    return np.array([[linear_cka(a, b, debiased) for b in features_b] for a in features_a])
