"""Optuna's own storage test suite (``optuna.testing.pytest_storages.StorageTestCase``) over the storage every
worker of a study uses (``open_storage``: the budget, the SQLite locks, heartbeats that survive a restart), on
SQLite, on PostgreSQL and on a journal file: whatever sweeplab adds, the storage still behaves as Optuna's."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.testing.pytest_storages import StorageTestCase
from optuna.trial import TrialState

from sweeplab.run._storage import open_storage
from sweeplab.spec._schema import Heartbeat


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "journal"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per backend: creating Optuna's tables for every test would take most of the time."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_cluster").create_database("storage_suite")
    if request.param == "journal":
        return "journal"  # a log only grows: each test gets a fresh one (below)
    return f"sqlite:///{tmp_path_factory.mktemp('storage_suite')}/optuna.db"


@pytest.fixture
def storage(database: str, tmp_path: Path) -> Iterator[BaseStorage]:
    """The storage of a study without a budget, empty at the start of each test, as the suite expects."""
    if database == "journal":
        database = f"journal:///{tmp_path}/optuna.log"
    storage = open_storage(database, Heartbeat(), None, None)
    assert storage.get_all_studies() == [], "a test left studies behind"
    yield storage
    for study in storage.get_all_studies():
        storage.delete_study(study._study_id)
    if hasattr(storage, "engine"):
        storage.engine.dispose()


class TestWorkerStorage(StorageTestCase):
    """Every test of Optuna's suite, run once per database."""


def test_intermediate_values_written_together_read_as_reported_one_by_one(storage: BaseStorage) -> None:
    study_id = storage.create_new_study([StudyDirection.MINIMIZE])
    together, one_by_one = storage.create_new_trial(study_id), storage.create_new_trial(study_id)
    values = {0: 0.5, 2: -1.0, 1: math.inf, 3: -math.inf, 4: math.nan}
    storage.set_trial_intermediate_values(together, values)  # type: ignore[attr-defined]
    for step, value in values.items():
        storage.set_trial_intermediate_value(one_by_one, step, value)
    written = sorted(storage.get_trial(together).intermediate_values.items())
    assert repr(written) == repr(sorted(storage.get_trial(one_by_one).intermediate_values.items()))
    assert repr(written) == repr(sorted(values.items()))  # repr: NaN equals NaN
    storage.set_trial_state_values(together, TrialState.COMPLETE, [0.5])
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_intermediate_values(together, {5: 0.0})  # type: ignore[attr-defined]
