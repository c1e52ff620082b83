"""An advisory lock file: parallel trials prepare a data set once, not once each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["exclusive"]


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock so that parallel trials generate a data set once, not once each (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; concurrent writers still leave a valid file, just do more work
        yield
        return
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
