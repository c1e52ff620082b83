"""Search-space dimensions: what the sampler draws, named as Optuna parameters."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
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

    def grid_values(self) -> list[Any]:
        """Every value of a discrete dimension, as Optuna stores it (choices encoded)."""
        if self.choices is not None:
            return list(self._encoded_choices())
        step = self.step or 1
        count = int(round((self.high - self.low) / step)) + 1  # type: ignore[operator]
        values = [self.low + i * step for i in range(count)]  # type: ignore[operator]
        return [int(v) for v in values] if self.integer else [float(v) for v in values]

    def _encoded_choices(self) -> Sequence[Any]:
        # Optuna's categorical choices must be primitives: lists and mappings travel as JSON text.
        assert self.choices is not None
        return [c if isinstance(c, _PRIMITIVES) else json.dumps(c) for c in self.choices]

    def _decode(self, encoded: Any) -> Any:
        assert self.choices is not None
        return self.choices[list(self._encoded_choices()).index(encoded)]


def grid_points(groups: Sequence[tuple[dict[str, Any], Sequence[Dimension]]]) -> Iterator[dict[str, Any]]:
    """All parameter assignments of a grid: for each (fixed params, dimensions) group, the product of its values."""
    for fixed, dimensions in groups:
        names = [d.name for d in dimensions]
        for values in itertools.product(*(d.grid_values() for d in dimensions)):
            yield {**fixed, **dict(zip(names, values, strict=False))}
