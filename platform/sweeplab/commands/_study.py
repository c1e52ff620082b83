"""``sweeplab validate``, ``run`` and ``worker``: check a study file, run it, or join it from another process."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sweeplab.commands._exit import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK

if TYPE_CHECKING:
    from sweeplab.spec import Study


def load_or_report(path: str) -> Study | None:
    """The study at ``path``, or None after printing what is wrong with it (file, line and field)."""
    from sweeplab.spec import StudyError, load_study

    try:
        return load_study(path)
    except StudyError as error:
        print(error, file=sys.stderr)
        return None


def validate_command(paths: Sequence[str], verbose: bool = False) -> int:
    """Check study files; ``verbose`` also says where user code had to be imported to check it."""
    status = EXIT_OK
    for path in paths:
        study = load_or_report(path)
        if study is None:
            status = EXIT_INVALID
            continue
        sizes = ", ".join(f"{p.key} ({len(p.dimensions)} searched)" for p in study.models)
        stage = study.finetune
        finetune = f"; a finetune stage ({len(stage.dimensions)} searched)" if stage is not None else ""
        transfer = study.spec.transfer  # only with strategy transfer (the checker)
        transferred = (
            f"; transfer: {transfer.parameter} {transfer.proxy} -> {', '.join(map(str, transfer.targets))}"
            if transfer is not None
            else ""
        )
        print(
            f"{path}: ok - {study.name}: {sizes}; {len(study.shared_dimensions)} shared dimensions{finetune}"
            f"{transferred}"
        )
        if verbose:
            for note in study.notes:
                print(f"  {note}")
    return status


def run_command(path: str, storage: str | None, tracking_uri: str | None, n_trials: int | None) -> int:
    study = load_or_report(path)
    if study is None:
        return EXIT_INVALID
    from rich.console import Console

    from sweeplab.run import StudyInterruptedError, run_study

    console = Console(stderr=True)
    try:
        outcome = run_study(study, storage, tracking_uri, n_trials, console)
    except StudyInterruptedError as interrupted:
        outcome = interrupted.outcome
        console.print(
            f"[yellow]interrupted[/]: {outcome.finished} trials finished; the running trial is marked failed and "
            f"queued again. Run the same command to resume."
        )
        return EXIT_INTERRUPTED
    if outcome.best_values is None:
        console.print(f"study {outcome.study_name}: {outcome.finished} trials finished, none completed")
    elif outcome.pareto_trials:
        front = ", ".join(map(str, outcome.pareto_trials))
        console.print(f"study [bold]{outcome.study_name}[/]: {outcome.finished} trials finished; Pareto front: {front}")
    else:
        values = ", ".join(f"{m}={v:.6g}" for m, v in zip(study.metrics, outcome.best_values, strict=False))
        console.print(
            f"study [bold]{outcome.study_name}[/]: {outcome.finished} trials finished; best {values} "
            f"({outcome.best_model}, trial {outcome.best_trial})"
        )
    print(f"mlflow parent run: {outcome.parent_run_id}  (browse: sweeplab ui {path})")
    return EXIT_OK


def worker_command(path: str, storage: str | None, tracking_uri: str | None, create_only: bool) -> int:
    """Run trials until the study's budget (its own ``n_trials``), or with ``create_only`` only open the study."""
    if not create_only:
        return run_command(path, storage, tracking_uri, None)
    study = load_or_report(path)
    if study is None:
        return EXIT_INVALID
    from rich.console import Console

    from sweeplab.run import StudyRunner

    runner = StudyRunner(study, storage, tracking_uri, console=Console(stderr=True))
    with runner.session() as optuna_study:
        print(f"study {optuna_study.study_name} ready; mlflow parent run: {runner.parent_run_id}")
    return EXIT_OK
