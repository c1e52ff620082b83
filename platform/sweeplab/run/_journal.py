"""Optuna's journal storage on a shared file system, for clusters without a database server.

Optuna writes the study as an append-only log (``JournalFileBackend``), the storage it documents for NFS, where
SQLite's locking is unsafe. sweeplab's worker storage adds what the RDB storages give the other workers:

- **the budget across workers**: a new trial is added under a study lock, after counting the trials finished or in
  flight (the lock is a file created with ``O_EXCL``, Optuna's NFS-safe lock, not ``flock``);
- **heartbeats**: Optuna's journal storage has none, so a lost worker's trial would stay RUNNING for ever. Here
  each running trial touches a file of its own beside the log; a RUNNING trial whose file is older than the grace
  period is stale. Ages are measured against a probe file touched at the same moment, so both times come from
  the file server's clock and the workers' clocks never have to agree.

A queued trial needs no lock here: the journal replays every worker's operations in one order, and a worker whose
``WAITING -> RUNNING`` came second gets ``False`` back (Optuna then skips that trial).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat  # RDBStorage's base too; not re-exported by Optuna
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import FrozenTrial, TrialState

from sweeplab.run._budget import refuse_beyond_budget

if TYPE_CHECKING:
    import optuna

JOURNAL_SCHEME = "journal:///"

# Seconds after which a lock file left by a killed worker is taken over (Optuna's own default for its log lock).
LOCK_GRACE_SECONDS = 30


def is_journal(url: str) -> bool:
    return url.startswith(JOURNAL_SCHEME)


def journal_path(url: str) -> Path:
    """The log file of ``journal:///relative/path.log`` or ``journal:////absolute/path.log`` (the slashes of
    ``sqlite:///``: three before a relative path, four before an absolute one)."""
    return Path(url.removeprefix(JOURNAL_SCHEME))


@contextlib.contextmanager
def journal_lock(url: str, name: str) -> Iterator[None]:
    """Hold the lock ``name`` of the study whose log is at ``url``, across processes and machines."""
    path = journal_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = JournalFileOpenLock(f"{path}.{name}", grace_period=LOCK_GRACE_SECONDS)
    while not lock.acquire():  # acquire() gives up after a while; a worker waits as long as it takes
        time.sleep(0.05)
    try:
        yield
    finally:
        lock.release()


class JournalWorkerStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage as one worker of a study uses it: no trial started beyond ``budget`` (None: no
    limit), and heartbeats so that the trials of lost workers are failed and retried as on the RDB storages."""

    def __init__(
        self,
        url: str,
        budget: int | None = None,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        heartbeat_stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        path = journal_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
        self.url = url
        self.budget = budget
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback
        self._beats = Path(f"{path}.heartbeats")

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if self.budget is None or template_trial is not None:  # a queued retry replaces a trial, adds none
            return super().create_new_trial(study_id, template_trial)
        with journal_lock(self.url, "trial-start"):
            refuse_beyond_budget(self.get_all_trials(study_id, deepcopy=False), self.budget)
            return super().create_new_trial(study_id, template_trial)

    def set_trial_intermediate_values(self, trial_id: int, values: Mapping[int, float]) -> None:
        """The database storage's batch (``WorkerStorage``): here one journal entry per step."""
        for step, value in values.items():
            self.set_trial_intermediate_value(trial_id, step, value)

    # -- heartbeats ------------------------------------------------------------------------------------------
    def record_heartbeat(self, trial_id: int) -> None:
        self._beats.mkdir(parents=True, exist_ok=True)
        beat = self._beats / str(trial_id)
        beat.touch()
        os.utime(beat)  # touch() leaves the time of an existing file alone on some file systems

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        assert self.grace_period is not None
        now = self._file_system_now()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            with contextlib.suppress(FileNotFoundError):  # no beat yet: the trial is just starting
                if now - (self._beats / str(trial._trial_id)).stat().st_mtime > self.grace_period:
                    stale.append(trial._trial_id)
        return stale

    def _file_system_now(self) -> float:
        """The file server's time now: the modification time of a file written this moment."""
        self._beats.mkdir(parents=True, exist_ok=True)
        probe = self._beats / f"now-{uuid.uuid4().hex}"
        probe.touch()
        try:
            return probe.stat().st_mtime
        finally:
            probe.unlink()

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.heartbeat_stale_trial_callback
