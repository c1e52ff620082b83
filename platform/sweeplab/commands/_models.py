"""``sweeplab models``: the architectures a study can name, built in or registered by installed plugins."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from sweeplab.commands._exit import EXIT_INVALID, EXIT_OK

__all__ = ["models_command", "print_registry"]


def models_command() -> int:
    """Every registered model (name, source package, task, dimensions, presets, description); exit 2 when a
    plugin clashes with another package's name or cannot be loaded."""
    from sweeplab_modules.registry import MODELS

    rows = [
        (name, MODELS.source(name), entry.task, str(entry.spatial_dims), ", ".join(entry.presets), entry.description)
        for name, entry in sorted(MODELS.items())
    ]
    return print_registry(["model", "package", "task", "dims", "presets", "description"], rows, MODELS.problems)


def print_registry(columns: Sequence[str], rows: Sequence[Sequence[str]], problems: Mapping[str, str]) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or captured: keep rows whole
        console = Console(width=200)
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for problem in problems.values():
        print(f"error: {problem}", file=sys.stderr)
    return EXIT_INVALID if problems else EXIT_OK
