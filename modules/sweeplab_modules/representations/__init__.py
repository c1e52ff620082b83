"""Representation learning: encoders, projection heads (incl. the fixed reweighting head and the Householder
projector), the d-Simplex fixed classifier, Grassmann class subspaces, relative representations, contrastive
losses (incl. HOC compatibility), downstream evaluation (linear probe, k-NN, model compatibility), layer
activations and CKA.

Names are loaded on first use: the registry reads the models' constructors from ``_models.py`` without importing
torch, and ``cka`` and the compatibility metrics need numpy only.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES = {
    "_activations": ["layer_activations"],
    "_augment": ["FeatureDropout", "ImageAugment"],
    "_compatibility": [
        "average_compatibility",
        "average_multimodel_accuracy",
        "empirical_compatibility",
        "search_accuracy",
    ],
    "_encoders": ["ConvEncoder", "MLPEncoder", "ResNetEncoder"],
    "_evaluation": ["knn_accuracy", "linear_probe_accuracy"],
    "_heads": ["HEADS", "ReweightHead", "make_head"],
    "_grassmann": ["GrassmannClassifier", "random_frames"],
    "_householder": ["HouseholderProjector", "householder_frame"],
    "_hydra": ["PAIRINGS", "PairGate", "draw_partners"],
    "_models": [
        "ContrastiveNet",
        "ConvContrastiveNet",
        "ConvStitchingPair",
        "GrassmannConvNet",
        "HydraConvNet",
        "IncrementalConvNet",
        "MLPContrastiveNet",
        "PoincareResNet",
    ],
    "_poincare": [
        "PoincareBatchNorm2d",
        "PoincareConv2d",
        "PoincareLinear",
        "PoincareResNetEncoder",
        "PoincareResidualBlock",
    ],
    "_relative": ["RelativeProjection"],
    "_simplex": ["SimplexClassifier", "simplex_vertices"],
    "cka": ["cka_matrix", "linear_cka"],
    "losses": ["hoc_loss", "hydra_loss", "nt_xent", "supervised_contrastive"],
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__
