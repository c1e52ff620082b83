"""The embedded default stores are SQLite files under mlruns/."""

from __future__ import annotations

import sqlite3
from functools import cache
from pathlib import Path
from typing import Any


def sqlite_path(url: str) -> Path:
    """The database file of ``sqlite:///path?options`` (its query is options of the connection, not the name)."""
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


def prepare_sqlite(url: str) -> None:
    """Create the folder of a SQLite database (``sqlite:///mlruns/x.db``) so a fresh checkout just works, and
    tune every SQLite connection this process opens."""
    if url.startswith("sqlite:///"):
        sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
        _tune_sqlite_connections()


@cache
def _tune_sqlite_connections() -> None:
    """Write-ahead logging with ``synchronous=NORMAL`` on every SQLite connection SQLAlchemy opens (Optuna's and
    MLflow's engines are created inside those libraries, so the hook is on the Engine class).

    In the default rollback-journal mode each commit syncs the database file twice: a trial's Optuna report,
    user attribute or MLflow write took 10-15 ms, as long as a small model's training step. With WAL a commit
    appends to the log (about 2 ms here); readers no longer block the writer, which also helps several local
    workers on one study. The database cannot be corrupted by a crash; a power cut can lose the last commits.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "connect", _tune_connection)


def _tune_connection(dbapi_connection: Any, connection_record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # persistent in the file; a no-op once set
        cursor.execute("PRAGMA synchronous=NORMAL")  # per connection
        # Several local workers write one file: wait for the lock (as Optuna's storage does) rather than fail.
        cursor.execute("PRAGMA busy_timeout=120000")
        cursor.close()
