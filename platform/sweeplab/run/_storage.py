"""The Optuna storage shared by every worker of a study: pooled connections, heartbeats, a budget that holds
across processes, and a lock that serialises what only the first worker may do.

Several workers (processes, machines) run one study through one database. Two things need them to take turns:
creating the stores (Optuna and MLflow each create their tables on a fresh database, and two workers doing it at
once collide), and starting a trial (each worker counts the trials finished or in flight before it adds one, so
that the study stops at exactly its budget rather than at the budget plus the trials in flight). On PostgreSQL the
turns are advisory locks; on SQLite, whose workers share a machine, a lock file beside the database; on a journal
file (clusters without a database server, ``_journal``), lock files created beside the log.
"""

from __future__ import annotations

import contextlib
import fcntl
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState

from sweeplab._sqlite import prepare_sqlite, sqlite_path
from sweeplab._stores import lost_connection
from sweeplab.run._budget import refuse_beyond_budget
from sweeplab.run._journal import JournalWorkerStorage, is_journal, journal_lock, journal_path

if TYPE_CHECKING:
    import optuna

    from sweeplab.spec._schema import Heartbeat

# Seconds a SQLite writer waits for another process's write to finish before "database is locked".
SQLITE_BUSY_SECONDS = 120.0


def is_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


def engine_options(url: str) -> dict[str, Any]:
    """Connections are checked before use (a database restart costs a reconnect, not an error) and a SQLite
    writer waits for the others instead of failing. Optuna's pool keeps two connections (trials, heartbeats) and
    opens more only for ``n_jobs`` threads; with the lock's and MLflow's, a worker holds about four."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    return {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 8, "pool_recycle": 1800}


@contextlib.contextmanager
def study_lock(url: str, name: str) -> Iterator[None]:
    """Hold the lock ``name`` of the study database at ``url`` (other databases: no lock)."""
    if is_journal(url):
        with journal_lock(url, name):
            yield
    elif is_postgresql(url):
        with _advisory_lock(url, name):
            yield
    elif url.startswith("sqlite:///"):
        prepare_sqlite(url)
        with open(f"{sqlite_path(url)}.{name}.lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
    else:
        yield


@contextlib.contextmanager
def _advisory_lock(url: str, name: str) -> Iterator[None]:
    import sqlalchemy
    import sqlalchemy.exc

    key = zlib.crc32(f"sweeplab:{name}".encode())  # a fixed 32-bit key per lock name
    engine = _lock_engine(url)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            with contextlib.suppress(sqlalchemy.exc.OperationalError):  # a lost connection took its lock along
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()


_lock_engines: dict[str, Any] = {}


def _lock_engine(url: str) -> Any:
    """One small engine per database for the locks: a lock lives on the connection that took it."""
    import sqlalchemy

    if url not in _lock_engines:
        _lock_engines[url] = sqlalchemy.create_engine(url, **engine_options(url))
    return _lock_engines[url]


class WorkerStorage(RDBStorage):
    """Optuna's RDB storage as one worker of a study uses it: no trial started beyond ``budget`` (None: no limit)
    by any worker, a queued or lost trial taken by one thread only on SQLite, and heartbeats that survive a
    database restart. A module-level class, so that it pickles as Optuna's storages do."""

    def __init__(self, url: str, budget: int | None = None, **kwargs: Any) -> None:
        prepare_sqlite(url)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are experimental in Optuna 5
            super().__init__(url, engine_kwargs=engine_options(url), **kwargs)
        self.budget = budget

    # The method every new trial goes through: Optuna's caching wrapper calls it rather than the public one.
    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        if self.budget is None or template_trial is not None:  # a queued retry replaces a trial, adds none
            return super()._create_new_trial(study_id, template_trial)
        with study_lock(self.url, "trial-start"):
            refuse_beyond_budget(self.get_all_trials(study_id, deepcopy=False), self.budget)
            return super()._create_new_trial(study_id, template_trial)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        # Taking a queued trial reads that it is WAITING, then marks it RUNNING; failing a stale trial reads
        # that it is RUNNING, then marks it FAIL. SQLite ignores Optuna's row lock (SELECT ... FOR UPDATE), so
        # two threads or processes could both take a queued trial and train it twice, or both fail a lost
        # trial and queue its retry twice. (PostgreSQL honours the row lock.)
        if state not in (TrialState.RUNNING, TrialState.FAIL) or is_postgresql(self.url):
            return super().set_trial_state_values(trial_id, state, values)
        with study_lock(self.url, "trial-start"):
            return super().set_trial_state_values(trial_id, state, values)

    def set_trial_intermediate_values(self, trial_id: int, values: Mapping[int, float]) -> None:
        """Several steps' values in one transaction (Optuna's ``report`` commits each on its own): Optuna's own
        write of a value, in one of its sessions (private, as ``_create_new_trial``: the storage tests cover it)."""
        with _create_scoped_session(self.scoped_session, True) as session:
            for step, value in values.items():
                self._set_trial_intermediate_value_without_commit(session, trial_id, step, value)

    def record_heartbeat(self, trial_id: int) -> None:
        # Optuna beats from a thread that dies with its first error: a database restart would silence a
        # live trial for good, and another worker would then fail it as lost. A beat missed while the
        # database is away is skipped; the next one reconnects.
        try:
            super().record_heartbeat(trial_id)
        except Exception as error:  # Optuna wraps the database's errors in its own
            if lost_connection(error) is None:
                raise


def open_storage(
    url: str,
    heartbeat: Heartbeat,
    budget: int | None,
    on_stale_trial: Callable[[optuna.Study, FrozenTrial], None] | None,
) -> WorkerStorage | JournalWorkerStorage:
    """The study's Optuna storage: heartbeats every ``heartbeat.interval`` seconds, ``on_stale_trial`` for the
    trials of lost workers, and no trial started beyond ``budget`` (None: no limit) by any worker."""
    storage = JournalWorkerStorage if is_journal(url) else WorkerStorage
    return storage(
        url,
        budget,
        heartbeat_interval=heartbeat.interval,
        grace_period=heartbeat.grace,
        heartbeat_stale_trial_callback=on_stale_trial,
    )


def storage_for_reading(url: str) -> str | JournalWorkerStorage:
    """What Optuna's readers (``load_study``, ``get_all_study_summaries``) take for ``url``: the URL itself for a
    database, Optuna cannot open a journal file by URL."""
    return JournalWorkerStorage(url) if is_journal(url) else url


def storage_exists(url: str) -> bool:
    """False when ``url`` names a file store (SQLite, journal) that is not there yet: nothing to read."""
    for scheme, path in (("sqlite:///", url.removeprefix("sqlite:///")), ("journal:///", journal_path(url))):
        if url.startswith(scheme):
            return Path(path).exists()
    return True
