"""The ``sweeplab`` command line: its parser, and each subcommand's arguments handed to ``sweeplab.commands``.
Heavy libraries (torch, Lightning, MLflow) are imported only by the commands that need them, so ``--help`` and
``validate`` answer at once."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    from sweeplab import __version__
    from sweeplab.spec import DEFAULT_STORAGE, DEFAULT_TRACKING_URI

    parser = argparse.ArgumentParser(
        prog="sweeplab",
        description="Hyperparameter sweeps for scientific ML: one YAML study -> Optuna -> Lightning -> MLflow.",
    )
    parser.add_argument("--version", action="version", version=f"sweeplab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure (also: SWEEPLAB_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run or resume a study until its budget of finished trials is reached")
    run.add_argument("study", help="the study YAML")
    run.add_argument("--n-trials", type=_positive_int, help="finished trials to reach (overrides budget.n_trials)")
    run.add_argument("--storage", type=_storage_url, help="Optuna storage URL (overrides the study's)")
    run.add_argument("--tracking-uri", type=_tracking_uri, help="MLflow tracking URI (overrides the study's)")

    worker = commands.add_parser(
        "worker", help="join a study from any number of processes or machines; run trials until its budget is reached"
    )
    worker.add_argument("study", help="the study YAML")
    worker.add_argument(
        "--storage",
        type=_storage_url,
        default=os.environ.get("SWEEPLAB_STORAGE"),
        help="Optuna storage URL (default $SWEEPLAB_STORAGE, else the study's)",
    )
    worker.add_argument(
        "--tracking-uri",
        type=_tracking_uri,
        default=os.environ.get("SWEEPLAB_TRACKING_URI"),
        help="MLflow tracking URI (default $SWEEPLAB_TRACKING_URI, else the study's)",
    )
    worker.add_argument(
        "--create-only", action="store_true", help="create the study, its experiment and parent run, then exit"
    )

    submit = commands.add_parser(
        "submit", help="start a study's workers as a Slurm job array (submitit), or as local processes"
    )
    submit.add_argument("study", help="the study YAML (its launcher: block gives the defaults of the flags below)")
    where = submit.add_mutually_exclusive_group(required=True)
    where.add_argument("--slurm", action="store_true", help="submit a job array with sbatch")
    where.add_argument("--local", action="store_true", help="run the workers here and wait for them")
    submit.add_argument(
        "--storage", type=_storage_url, help="Optuna storage URL (default $SWEEPLAB_STORAGE, else the study's)"
    )
    submit.add_argument(
        "--tracking-uri",
        type=_tracking_uri,
        help="MLflow tracking URI (default $SWEEPLAB_TRACKING_URI, else the study's)",
    )
    submit.add_argument("--workers", type=_positive_int, help="worker processes (array tasks)")
    submit.add_argument("--partition", help="Slurm partition")
    submit.add_argument("--time", type=_positive_int, help="minutes each worker may run")
    submit.add_argument("--cpus-per-worker", type=_positive_int, help="CPU cores per worker")
    submit.add_argument("--gpus-per-worker", type=int, help="GPUs per worker")
    submit.add_argument("--mem-gb", type=float, help="memory per worker, GB")
    submit.add_argument(
        "--sbatch", action="append", metavar="OPTION=VALUE", help="a further sbatch option, e.g. account=lab"
    )
    submit.add_argument("--python", help="the Python the workers run (default: this one)")
    submit.add_argument("--folder", help="job scripts and logs (default mlruns/slurm/<study>)")

    validate = commands.add_parser("validate", help="check a study file without running anything")
    validate.add_argument("study", nargs="+", help="study YAML files")
    validate.add_argument(
        "--verbose", action="store_true", help="also say how user classes were checked (source read or imported)"
    )

    ui = commands.add_parser("ui", help="start the MLflow UI on 127.0.0.1 against a study's tracking store")
    ui.add_argument("study", nargs="?", help="a study YAML (its tracking URI is used)")
    ui.add_argument("--tracking-uri", type=_tracking_uri, help=f"MLflow tracking URI (default {DEFAULT_TRACKING_URI})")
    ui.add_argument("--port", type=int, default=5000, help="port (default 5000; 0 picks a free one)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")

    studies = commands.add_parser("studies", help="list the studies in an Optuna storage")
    studies.add_argument(
        "--storage", type=_storage_url, default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})"
    )

    from sweeplab.compare import FORMATS

    compare = commands.add_parser(
        "compare", help="compare architectures across studies: tables, plots and an HTML report"
    )
    compare.add_argument("study", nargs="+", help="study YAML files, or study names with --storage/--tracking-uri")
    compare.add_argument("--metric", help="the metric to compare (default: the studies' objective)")
    compare.add_argument("--format", choices=FORMATS, default="table", help="output on stdout (html: the report)")
    compare.add_argument("--out", type=Path, help="folder for the HTML report, its PNGs and the tables")
    compare.add_argument("--top-k", type=_positive_int, default=5, help="trials the median and IQR cover (default 5)")
    compare.add_argument(
        "--storage", type=_storage_url, help=f"Optuna storage URL (default: the study's, else {DEFAULT_STORAGE})"
    )
    compare.add_argument(
        "--tracking-uri",
        type=_tracking_uri,
        help=f"MLflow tracking URI (default: the study's, else {DEFAULT_TRACKING_URI})",
    )
    compare.add_argument("--no-log", action="store_true", help="do not log the report on the studies' parent runs")

    replay = commands.add_parser(
        "replay", help="train a fresh plain model with the hyperparameter schedule a self-tuning run recorded"
    )
    replay.add_argument("run_id", help="the MLflow run of a self_tuning trial")
    replay.add_argument(
        "--tracking-uri", type=_tracking_uri, default=DEFAULT_TRACKING_URI, help=f"default {DEFAULT_TRACKING_URI}"
    )

    predict = commands.add_parser(
        "predict", help="a study's trained model on inputs from a file (physical units in and out)"
    )
    predict.add_argument(
        "model", help="a trial's run id, runs:/<run id>, models:/<study>@best, models:/<study>@best-<label>, ..."
    )
    predict.add_argument("--input", type=Path, required=True, help="inputs (samples, channels, *grid): .npy, .npz, .h5")
    predict.add_argument("--output", type=Path, required=True, help="where the outputs go: .npy, .npz or .h5")
    predict.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help=f"MLflow tracking URI and registry (default $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})",
    )

    data = commands.add_parser("data", help="generate data sets into the cache, list the cache")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    generate = data_commands.add_parser("generate", help="generate a data set into the cache (nothing if cached)")
    generate.add_argument("name", help="a registered data set (darcy, burgers, navier_stokes, ...)")
    generate.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a data set parameter (repeatable)"
    )
    generate.add_argument("--data-dir", type=Path, help="data cache (default $SWEEPLAB_DATA_DIR or the user cache)")
    listing = data_commands.add_parser("ls", help="list the cached data sets")
    listing.add_argument("--data-dir", type=Path, help="data cache (default $SWEEPLAB_DATA_DIR or the user cache)")
    listing.add_argument(
        "--available", action="store_true", help="list the data sets a study can name (built in and plugins')"
    )
    commands.add_parser("models", help="list the models a study can name, built in and from installed plugins")
    return parser


def _url_of(key: str) -> Callable[[str], str]:
    """An argument type that checks a URL flag as the study's ``key`` is checked (exit 2 naming the flag)."""

    def checked(text: str) -> str:
        from sweeplab.spec import url_problem

        problem = url_problem(key, text)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return text

    return checked


_storage_url = _url_of("storage")
_tracking_uri = _url_of("tracking.uri")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; a failure no command handled (a store down, Ctrl-C during start-up, a bug) is one line
    and an exit status (``commands._exit``), its traceback only with ``--debug`` or ``SWEEPLAB_DEBUG=1``."""
    args: argparse.Namespace | None = None
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except (Exception, KeyboardInterrupt) as error:
        if os.environ.get("SWEEPLAB_DEBUG", "0") not in ("", "0") or (args is not None and args.debug):
            raise
        from sweeplab.commands import report_failure

        return report_failure(error)


def _run(args: argparse.Namespace) -> int:
    from sweeplab.commands import run_command

    return run_command(args.study, args.storage, args.tracking_uri, args.n_trials)


def _worker(args: argparse.Namespace) -> int:
    from sweeplab.commands import worker_command

    return worker_command(args.study, args.storage, args.tracking_uri, args.create_only)


def _submit(args: argparse.Namespace) -> int:
    from sweeplab.commands import EXIT_INVALID, submit_command

    sbatch = None
    if args.sbatch:
        pairs = [option.partition("=") for option in args.sbatch]
        if any(not key or not sep for key, sep, _ in pairs):
            print("--sbatch takes OPTION=VALUE, e.g. --sbatch account=lab", file=sys.stderr)
            return EXIT_INVALID
        sbatch = {key.strip().lstrip("-"): value for key, _, value in pairs}
    flags = {
        "workers": args.workers,
        "partition": args.partition,
        "time": args.time,
        "cpus_per_worker": args.cpus_per_worker,
        "gpus_per_worker": args.gpus_per_worker,
        "mem_gb": args.mem_gb,
        "sbatch": sbatch,
        "python": args.python,
        "folder": args.folder,
    }
    return submit_command(args.study, args.storage, args.tracking_uri, flags, local=args.local)


def _validate(args: argparse.Namespace) -> int:
    from sweeplab.commands import validate_command

    return validate_command(args.study, args.verbose)


def _ui(args: argparse.Namespace) -> int:
    from sweeplab.commands import ui_command

    return ui_command(args.study, args.tracking_uri, args.host, args.port)


def _studies(args: argparse.Namespace) -> int:
    from sweeplab.commands import studies_command

    return studies_command(args.storage)


def _compare(args: argparse.Namespace) -> int:
    from sweeplab.commands import compare_command

    return compare_command(
        args.study, args.metric, args.format, args.out, args.top_k, args.storage, args.tracking_uri, not args.no_log
    )


def _data(args: argparse.Namespace) -> int:
    from sweeplab.commands import generate_command, list_command

    if args.data_command == "generate":
        return generate_command(args.name, args.param, args.data_dir)
    return list_command(args.data_dir, args.available)


def _models(args: argparse.Namespace) -> int:
    from sweeplab.commands import models_command

    return models_command()


def _predict(args: argparse.Namespace) -> int:
    from sweeplab.commands import predict_command

    return predict_command(args.model, args.input, args.output, args.tracking_uri)


def _replay(args: argparse.Namespace) -> int:
    from sweeplab.commands import replay_command

    return replay_command(args.run_id, args.tracking_uri)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "worker": _worker,
    "submit": _submit,
    "validate": _validate,
    "ui": _ui,
    "studies": _studies,
    "compare": _compare,
    "data": _data,
    "models": _models,
    "replay": _replay,
    "predict": _predict,
}


if __name__ == "__main__":
    sys.exit(main())
