"""Trials of lost workers: a worker killed in the middle of a trial (SIGKILL, out of memory, a machine gone)
leaves the trial RUNNING in Optuna and its run RUNNING in MLflow. Optuna's heartbeats find the trial; this
callback closes its run and queues its parameters again."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from optuna.exceptions import ExperimentalWarning
from optuna.storages import RetryHeartbeatStaleTrialCallback

from sweeplab.record import INTERRUPTED_ATTR, RETRY_OF_ATTR, RUN_ATTR

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


class StaleTrialRecovery(RetryHeartbeatStaleTrialCallback):
    """Called once per stale trial (Optuna has just failed it): ``close_run(run_id, reason)`` ends its MLflow run
    as KILLED, and Optuna's retry queues its parameters as a new trial that records which trial it repeats.

    A trial the runner marked interrupted was already queued again by its own worker (the worker then died before
    Optuna recorded the failure): only its run is closed, so it is never retried twice.
    """

    def __init__(self, close_run: Callable[[str, str], None], max_retry: int, grace: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # stable since Optuna 2.8, still so marked
            super().__init__(max_retry=max_retry)
        self.close_run = close_run
        self.grace = grace

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = [*trial.system_attrs.get("retry_history", []), trial.number]  # as Optuna's retry counts
        retried = not trial.user_attrs.get(INTERRUPTED_ATTR) and len(history) <= self._max_retry
        run_id = trial.user_attrs.get(RUN_ATTR)
        if run_id is not None:
            outcome = "queued again" if retried else "not retried"
            self.close_run(run_id, f"worker lost: no heartbeat for {self.grace} s; {outcome}")
        if not retried:
            return
        # The retry starts clean: only the parameters and where it comes from, not the lost run's attributes.
        fresh = copy.deepcopy(trial)
        fresh.user_attrs = {RETRY_OF_ATTR: trial.number}
        super().__call__(study, fresh)
