"""A study's best models served: as MLflow Models (the ``sweeplab`` flavour with ``python_function``), in the
Model Registry under the study's name (aliases ``best``, ``best-<label>``), and back as torch modules that map
inputs in physical units to outputs in physical units (``load_model``). Importing this package is cheap; torch
and MLflow load with the first function called."""

from __future__ import annotations

import importlib
from typing import Any

_PARTS = {
    "ARRAY_SUFFIXES": "_arrays",
    "ArrayFileError": "_arrays",
    "FLAVOR_NAME": "_flavor",
    "array_format": "_arrays",
    "PhysicalModel": "_module",
    "load_model": "_load",
    "log_mlflow_model": "_flavor",
    "model_location": "_load",
    "read_array": "_arrays",
    "rebuild": "_module",
    "register_version": "_registry",
    "save_mlflow_model": "_flavor",
    "write_array": "_arrays",
}

__all__ = sorted(_PARTS)


def __getattr__(name: str) -> Any:
    if name in _PARTS:
        return getattr(importlib.import_module(f"{__name__}.{_PARTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
