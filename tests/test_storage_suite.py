"""Optuna's own storage test suite (``optuna.testing.pytest_storages.StorageTestCase``) over the storage every
worker of a study uses (``open_storage``: the budget, the SQLite locks, heartbeats that survive a restart), on
SQLite, on PostgreSQL and on a journal file: whatever sweeplab adds, the storage still behaves as Optuna's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.storages import BaseStorage
from optuna.testing.pytest_storages import StorageTestCase

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
