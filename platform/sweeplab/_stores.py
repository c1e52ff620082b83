"""The stores a study writes to (the Optuna storage, the MLflow tracking store) as the user meets them: one that
cannot be reached or written is named with a one-line cause within seconds, a lost connection is told apart from
other errors, and an outage is waited out with back-off up to a limit."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sweeplab._provenance import redacted

PROBE_SECONDS = 5
"""How long reaching a store may take at start before it counts as unreachable."""
LONGEST_PAUSE = 30.0
"""The longest wait between two tries during an outage: a store that is back is noticed within this."""


class StoreUnavailableError(Exception):
    """A store or service cannot be reached or written; the message names it and says why, in one line."""


# The stores kept in one file (SQLite, Optuna's journal): three slashes before a relative path, four before an
# absolute one.
_FILE_SCHEMES = ("sqlite:///", "journal:///")


def _file_path(url: str) -> Path | None:
    """The file of a store kept in one file (None: a server, or SQLite in memory)."""
    for scheme in _FILE_SCHEMES:
        if url.startswith(scheme) and url.removeprefix(scheme) not in ("", ":memory:"):
            return Path(url.removeprefix(scheme))
    return None


def check_store(url: str, what: str) -> None:
    """Raise StoreUnavailableError, within about ``PROBE_SECONDS``, unless the store at ``url`` can be written (a
    SQLite or journal file and its folder) or reached (a database server, an MLflow server). ``what`` names it."""
    path = _file_path(url)
    if path is not None:
        _check_writable(path, what)
    elif url.startswith(("http://", "https://")):
        _check_server(url, what)
    elif "://" in url:
        _check_database(url, what)


def _check_writable(path: Path, what: str) -> None:
    # Probed where the database or its folders would be created, creating nothing: a command that stops here
    # leaves no trace.
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        with tempfile.TemporaryFile(dir=folder):  # the folder takes new files: the database, its journal
            pass
    except OSError as error:
        raise StoreUnavailableError(f"{what} at {path} is not writable: {folder}: {error.strerror}") from None
    try:
        if path.exists():
            path.open("r+b").close()
    except OSError as error:
        raise StoreUnavailableError(f"{what} at {path} is not writable: {error.strerror}") from None


def _check_server(url: str, what: str) -> None:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=PROBE_SECONDS).close()
    except urllib.error.HTTPError:  # it answered: reachable (what it serves is MLflow's to judge)
        pass
    except OSError as error:  # URLError, a timeout, a refused connection
        reason = getattr(error, "reason", error)
        raise StoreUnavailableError(f"cannot reach {what} at {redacted(url)}: {reason}") from None


def _check_database(url: str, what: str) -> None:
    import sqlalchemy
    import sqlalchemy.exc
    from sqlalchemy.pool import NullPool

    timeout = {"connect_timeout": PROBE_SECONDS} if url.startswith(("postgresql", "mysql")) else {}
    engine = sqlalchemy.create_engine(url, connect_args=timeout, poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.DBAPIError as error:
        cause = " ".join(str(error.orig).split())  # libpq's messages run over several lines
        raise StoreUnavailableError(f"cannot reach {what} at {redacted(url)}: {cause}") from None
    finally:
        engine.dispose()


def lost_connection(error: BaseException) -> BaseException | None:
    """The error behind ``error`` if a store went away (a database restart, the network, an MLflow server down)
    or, for SQLite, stayed locked past the busy timeout: worth waiting for. Optuna and MLflow wrap such errors in
    their own (a StorageInternalError, an MlflowException), so the whole chain is searched."""
    import requests.exceptions
    import sqlalchemy.exc

    lost = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, requests.exceptions.ConnectionError)
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, lost):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def one_line(error: BaseException) -> str:
    """A store error's message in one line (SQLAlchemy and libpq add lines of background)."""
    text = str(getattr(error, "orig", None) or error)
    return " ".join(text.split("(Background on this error")[0].split())


class OutageWait:
    """One worker waiting out the outages of its stores: pauses that double from 1 s to ``LONGEST_PAUSE``, for
    at most ``limit`` seconds per outage; ``say`` tells the user once when an outage starts and once when it
    ends. Past the limit it gives up for good: every later lost connection raises at once, so that a worker on
    its way out does not wait again. ``stop`` cuts a pause short (an interrupt)."""

    def __init__(self, limit: float, say: Callable[[str], None], stop: threading.Event | None = None) -> None:
        self.limit = limit
        self.say = say
        self.stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._since: float | None = None
        self._pause = 1.0
        self._gave_up: str | None = None

    def pause(self, what: str, error: BaseException) -> bool:
        """Wait before trying ``what`` again after ``error`` (a lost connection); True if ``stop`` was set
        meanwhile. Raises StoreUnavailableError once the outage has lasted ``limit`` seconds."""
        with self._lock:
            now = time.monotonic()
            if self._gave_up is not None:
                raise StoreUnavailableError(self._gave_up)
            if self._since is None:
                self._since, self._pause = now, 1.0
                self.say(
                    f"{what} unreachable ({one_line(lost_connection(error) or error)}); waiting for it, at most "
                    f"{self.limit:.0f} s (heartbeat.outage_limit)"
                )
            elapsed = now - self._since
            if elapsed >= self.limit:
                self._gave_up = (
                    f"{what} unreachable for {elapsed:.0f} s, past heartbeat.outage_limit ({self.limit:.0f} s): "
                    f"{one_line(lost_connection(error) or error)}"
                )
                raise StoreUnavailableError(self._gave_up)
            wait = min(self._pause, self.limit - elapsed)
            self._pause = min(2 * self._pause, LONGEST_PAUSE)
        return self.stop.wait(wait)

    def recovered(self) -> None:
        """A store answered: the outage, if there was one, is over."""
        if self._since is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self._since is not None and self._gave_up is None:
                self.say(f"stores reachable again after {time.monotonic() - self._since:.0f} s")
                self._since = None
