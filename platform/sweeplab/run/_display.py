"""The live progress display of a running study (rich), one line per finished trial: the study's trials with the
time left, each running trial's epochs (and batches within a long epoch) with its time left."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from sweeplab.record import MODEL_ATTR, REASON_ATTR

if TYPE_CHECKING:
    import optuna


def format_value(value: float | Sequence[float] | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(f"{v:.5g}" for v in value) + ")"
    return f"{value:.5g}"


def _objective_text(values: Sequence[float] | None) -> str:
    return format_value(values[0] if values and len(values) == 1 else values)


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    """A finished trial: number, state, architecture, objective, and why it was pruned or failed."""
    line = f"trial {trial.number:>3} {trial.state.name:<8} {trial.user_attrs.get(MODEL_ATTR, '?'):<12} "
    line += _objective_text(trial.values)
    reason = trial.user_attrs.get(REASON_ATTR, "")
    return line + (f"  [dim]{reason[:100]}[/]" if reason else "")  # only pruned and failed trials have one


def best_line(best: list[optuna.trial.FrozenTrial]) -> str:
    if not best:
        return "best: -"
    return f"best {_objective_text(best[0].values)} ({best[0].user_attrs.get(MODEL_ATTR)}, trial {best[0].number})"


class TimeLeftColumn(ProgressColumn):
    """The time left at the mean rate so far: rich's own estimate looks 30 seconds back, and a trial (the study's
    unit) or an epoch can take longer. Work done before the task started (a resumed study's trials) is left out."""

    def render(self, task: Task) -> Text:
        done = task.completed - task.fields.get("done_before", 0)
        if task.total is None or task.elapsed is None or done <= 0:
            return Text("eta -:--:--", style="progress.remaining")
        left = task.elapsed * max(task.total - task.completed, 0) / done
        return Text(f"eta {timedelta(seconds=round(left))}", style="progress.remaining")


class StudyProgress:
    """Trial k of N with the study's time left, the state of each finished trial, the best value so far with its
    architecture; each running trial's epoch (batches within a long epoch) and time left."""

    def __init__(self, console: Console, study_name: str, n_trials: int | None, max_epochs: int) -> None:
        self.console = console
        self.max_epochs = max_epochs
        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeLeftColumn(),
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
        """The trials finished before this session: they count as done, not in the rate of the time left."""
        self._progress.update(self._study, completed=count, done_before=count)

    def trial_started(self, number: int, model: str) -> None:
        with self._lock:
            self._trials[number] = self._progress.add_task(f"  trial {number} {model}", total=self.max_epochs)

    def epoch(self, number: int, epoch: int, summary: str) -> None:
        task = self._trials.get(number)
        if task is not None:
            self._progress.update(task, completed=epoch + 1, description=f"  trial {number} {summary}")

    def batch(self, number: int, epoch: int, done: int, total: int, model: str) -> None:
        """Within a long epoch: the trial's bar moves by the epoch's fraction done."""
        task = self._trials.get(number)
        if task is not None and total > 0:
            summary = f"  trial {number} {model} epoch {epoch + 1} batch {done}/{total}"
            self._progress.update(task, completed=epoch + done / total, description=summary)

    def trial_finished(self, number: int, finished: int, line: str, best: str) -> None:
        with self._lock:
            task = self._trials.pop(number, None)
            if task is not None:
                self._progress.remove_task(task)
            self._progress.update(self._study, completed=finished)
            self._progress.console.print(f"{line}   [dim]{best}[/]")
