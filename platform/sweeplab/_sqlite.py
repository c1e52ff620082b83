"""The embedded default stores are SQLite files under mlruns/."""

from __future__ import annotations

from pathlib import Path


def prepare_sqlite(url: str) -> None:
    """Create the folder of a SQLite database (``sqlite:///mlruns/x.db``) so a fresh checkout just works."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
