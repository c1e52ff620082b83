"""Search-space dimensions: what the sampler draws, named as Optuna parameters."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

# The Optuna parameter that picks the architecture; each architecture's own dimensions are conditional on it.
MODEL_PARAM = "model"

_PRIMITIVES = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Dimension:
    """One searched value. ``name`` is the Optuna parameter, ``target`` the argument it sets."""

    name: str
    target: str
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def discrete(self) -> bool:
        return self.choices is not None or self.integer or self.step is not None

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            encoded = trial.suggest_categorical(self.name, self._encoded_choices())
            return self._decode(encoded)
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)  # type: ignore[arg-type]
        return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step, log=self.log)  # type: ignore[arg-type]

    def grid_size(self) -> int:
        """How many values a discrete dimension has; a range ends at the last step not past ``high``, as Optuna's
        distributions do."""
        if self.choices is not None:
            return len(self.choices)
        step = self.step or 1
        return int(math.floor((self.high - self.low) / step + 1e-9)) + 1  # type: ignore[operator]

    def _encoded_choices(self) -> Sequence[Any]:
        # Optuna's categorical choices must be primitives: lists and mappings travel as JSON text.
        assert self.choices is not None
        return [c if isinstance(c, _PRIMITIVES) else json.dumps(c) for c in self.choices]

    def _decode(self, encoded: Any) -> Any:
        assert self.choices is not None
        return self.choices[list(self._encoded_choices()).index(encoded)]
