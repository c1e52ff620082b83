"""The live progress display of a running study (rich), one line per finished trial."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


def format_value(value: float | Sequence[float] | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(f"{v:.5g}" for v in value) + ")"
    return f"{value:.5g}"


class StudyProgress:
    """Trial k of N, the state of each finished trial, and the best value so far with its architecture."""

    def __init__(self, console: Console, study_name: str, n_trials: int | None, max_epochs: int) -> None:
        self.console = console
        self.max_epochs = max_epochs
        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._study = self._progress.add_task(f"[bold]{study_name}[/]", total=n_trials)
        self._trials: dict[int, TaskID] = {}

    def __enter__(self) -> StudyProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def set_finished(self, count: int) -> None:
        self._progress.update(self._study, completed=count)

    def trial_started(self, number: int, model: str) -> None:
        with self._lock:
            self._trials[number] = self._progress.add_task(f"  trial {number} {model}", total=self.max_epochs)

    def epoch(self, number: int, epoch: int, summary: str) -> None:
        task = self._trials.get(number)
        if task is not None:
            self._progress.update(task, completed=epoch + 1, description=f"  trial {number} {summary}")

    def trial_finished(self, number: int, finished: int, line: str, best: str) -> None:
        with self._lock:
            task = self._trials.pop(number, None)
            if task is not None:
                self._progress.remove_task(task)
            self._progress.update(self._study, completed=finished)
            self._progress.console.print(f"{line}   [dim]{best}[/]")
