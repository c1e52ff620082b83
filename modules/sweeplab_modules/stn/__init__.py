"""Self-Tuning Networks (MacKay, Vicol, Lorraine, Duvenaud, Grosse, ICLR 2019): hyperparameters tuned during
one training run through structured best-response layers, producing a hyperparameter schedule.

The declarations (``OnlineHyperparameter``, ``SelfTuningSettings``) are torch-free, for the study spec; the
torch parts are imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from sweeplab_modules.stn._settings import (
    APPLICATIONS,
    HYPERNET_INPUTS,
    TRANSFORMS,
    OnlineHyperparameter,
    SelfTuningSettings,
)

__all__ = [
    "APPLICATIONS",
    "HYPERNET_INPUTS",
    "TRANSFORMS",
    "HyperContext",
    "HyperparameterSpace",
    "InputRegularisation",
    "OnlineHyperparameter",
    "OutputDropout",
    "SelfTuningMixin",
    "SelfTuningSettings",
    "StructuredBestResponse",
    "applied_value",
    "best_response_layers",
    "magnitude_invariant_encoding",
    "constrained_value",
    "cutout",
    "regularised",
    "self_tuning_model",
    "self_tuning_task",
]

_TORCH_PARTS = {
    "HyperContext": "_hyper",
    "HyperparameterSpace": "_hyper",
    "applied_value": "_hyper",
    "constrained_value": "_hyper",
    "StructuredBestResponse": "_layers",
    "magnitude_invariant_encoding": "_mip",
    "InputRegularisation": "_convert",
    "OutputDropout": "_convert",
    "best_response_layers": "_convert",
    "cutout": "_convert",
    "regularised": "_convert",
    "SelfTuningMixin": "_training",
    "self_tuning_model": "_training",
    "self_tuning_task": "_training",
}


def __getattr__(name: str) -> Any:
    if name not in _TORCH_PARTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_TORCH_PARTS[name]}"), name)
