"""The ``sweeplab`` command. Heavy libraries (torch, Lightning, MLflow) are imported only by the commands that
need them, so ``--help`` and ``validate`` answer at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    from sweeplab import __version__
    from sweeplab.spec import DEFAULT_STORAGE, DEFAULT_TRACKING_URI

    parser = argparse.ArgumentParser(
        prog="sweeplab",
        description="Hyperparameter sweeps for scientific ML: one YAML study -> Optuna -> Lightning -> MLflow.",
    )
    parser.add_argument("--version", action="version", version=f"sweeplab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run or resume a study until its budget of finished trials is reached")
    run.add_argument("study", help="the study YAML")
    run.add_argument("--n-trials", type=_positive_int, help="finished trials to reach (overrides budget.n_trials)")
    run.add_argument("--storage", help="Optuna storage URL (overrides the study's)")
    run.add_argument("--tracking-uri", help="MLflow tracking URI (overrides the study's)")

    validate = commands.add_parser("validate", help="check a study file without running anything")
    validate.add_argument("study", nargs="+", help="study YAML files")

    ui = commands.add_parser("ui", help="start the MLflow UI on 127.0.0.1 against a study's tracking store")
    ui.add_argument("study", nargs="?", help="a study YAML (its tracking URI is used)")
    ui.add_argument("--tracking-uri", help=f"MLflow tracking URI (default {DEFAULT_TRACKING_URI})")
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000; 0 picks a free one)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")

    studies = commands.add_parser("studies", help="list the studies in an Optuna storage")
    studies.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"run": _run, "validate": _validate, "ui": _ui, "studies": _studies}[args.command]
    return handler(args)


def _load(path: str):  # type: ignore[no-untyped-def]
    from sweeplab.spec import StudyError, load_study

    try:
        return load_study(path)
    except StudyError as error:
        print(error, file=sys.stderr)
        return None


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.study:
        study = _load(path)
        if study is None:
            status = EXIT_INVALID
            continue
        sizes = ", ".join(f"{p.key} ({len(p.dimensions)} searched)" for p in study.models)
        print(f"{path}: ok - {study.name}: {sizes}; {len(study.shared_dimensions)} shared dimensions")
    return status


def _run(args: argparse.Namespace) -> int:
    study = _load(args.study)
    if study is None:
        return EXIT_INVALID
    from rich.console import Console

    from sweeplab._runner import StudyInterruptedError, run_study

    console = Console(stderr=True)
    try:
        outcome = run_study(study, args.storage, args.tracking_uri, args.n_trials, console)
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
    print(f"mlflow parent run: {outcome.parent_run_id}  (browse: sweeplab ui {args.study})")
    return 0


def _ui(args: argparse.Namespace) -> int:
    from sweeplab.spec import DEFAULT_TRACKING_URI

    uri = args.tracking_uri
    if uri is None and args.study:
        study = _load(args.study)
        if study is None:
            return EXIT_INVALID
        uri = study.spec.tracking.uri
    from sweeplab._ui import serve

    return serve(uri or DEFAULT_TRACKING_URI, args.host, args.port)


def _studies(args: argparse.Namespace) -> int:
    from sweeplab._summary import print_studies

    return print_studies(args.storage)


if __name__ == "__main__":
    sys.exit(main())
