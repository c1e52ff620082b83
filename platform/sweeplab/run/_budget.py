"""The budget across workers, as every storage enforces it: no trial is added once the trials finished or in flight
reach the study's ``n_trials`` (the storages call this under a study lock)."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState

from sweeplab.record import finished_trials


class BudgetReachedError(Exception):
    """The study's budget is taken by trials finished or in flight: this worker starts no further trial."""


def refuse_beyond_budget(trials: Sequence[FrozenTrial], budget: int) -> None:
    """Raise BudgetReachedError if ``trials`` (a study's, all of them) already take the whole ``budget``."""
    pending = sum(1 for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING))
    if finished_trials(trials) + pending >= budget:
        raise BudgetReachedError(f"{budget} trials finished or in flight")
