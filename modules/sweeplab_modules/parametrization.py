"""The ``parametrization`` option of the architectures that support muP, checked without importing torch: the
study's checker and the models apply the same rules (the scaling itself is ``layers/mup.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MUP_OPTIMIZERS", "PARAMETRIZATIONS", "parametrization_problem"]

PARAMETRIZATIONS = ("standard", "mup")
# muP's learning-rate rules for these (Tensor Programs V, Table 3); SGD scales differently.
MUP_OPTIMIZERS = ("adam", "adamw")


def parametrization_problem(params: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(parameter, why)`` when a model's ``parametrization`` and ``base_width`` do not go together, or None."""
    base_width = params.get("base_width")
    if base_width is not None and (isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1):
        return "base_width", f"must be an integer >= 1, got {base_width!r}"
    if params.get("parametrization", "standard") == "mup" and base_width is None:
        return "base_width", "parametrization mup needs base_width (the width its hyperparameters are tuned at)"
    return None
