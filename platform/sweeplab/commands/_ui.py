"""``sweeplab ui``: the MLflow UI (MLflow's own server) against a study's tracking store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from sweeplab._sqlite import prepare_sqlite
from sweeplab.commands._exit import EXIT_INVALID

_STARLETTE_WARNING = "ignore:starlette.middleware.wsgi is deprecated"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def server_argv(tracking_uri: str, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        tracking_uri,
        "--registry-store-uri",  # the study's registered models live beside its runs (and MLflow warns without it)
        tracking_uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def experiment_url(address: str, experiment_id: str) -> str:
    """The page of an experiment's training runs. MLflow 3.17's UI opens every experiment in its GenAI mode
    (traces, an assistant, "Detect Issues") whatever the experiment's ``mlflow.experimentKind`` tag says, unless
    the address asks for the model-training view; the choice holds for that page only."""
    return f"{address}/#/experiments/{experiment_id}?workflowType=machine_learning"


def ui_command(study_path: str | None, tracking_uri: str | None, host: str, port: int) -> int:
    """The UI against ``tracking_uri``, else the tracking store of the study at ``study_path``, else the default."""
    from sweeplab.commands._study import load_or_report
    from sweeplab.spec import DEFAULT_TRACKING_URI

    experiment = None
    if study_path:
        study = load_or_report(study_path)
        if study is None:
            return EXIT_INVALID
        tracking_uri = tracking_uri or study.spec.tracking.uri
        experiment = study.spec.experiment_name
    return serve(tracking_uri or DEFAULT_TRACKING_URI, host, port, experiment)


def serve(tracking_uri: str, host: str = "127.0.0.1", port: int = 5000, experiment: str | None = None) -> int:
    """Start the UI and wait for it; Ctrl-C or SIGTERM stops it and the server processes it started. With
    ``experiment`` (a study's), also print the address of its runs, if it has been recorded."""
    prepare_sqlite(tracking_uri)
    port = port or free_port(host)
    print(f"MLflow UI: http://{host}:{port}  (tracking store {tracking_uri}; Ctrl-C stops it)", flush=True)
    experiment_id = _experiment_id(tracking_uri, experiment) if experiment else None
    if experiment_id is not None:
        print(f"Study runs: {experiment_url(f'http://{host}:{port}', experiment_id)}", flush=True)
    # Its own process group: the MLflow server starts worker processes, and all of them must go with it.
    # MLflow's job runner (eight worker processes for GenAI scorers) has nothing to do for sweeps; the deprecation
    # of a Starlette module MLflow imports is MLflow's to act on, not the user's.
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), _STARLETTE_WARNING]))
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ, "PYTHONWARNINGS": warnings}
    process = subprocess.Popen(server_argv(tracking_uri, host, port), start_new_session=True, env=env)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return process.wait()
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _experiment_id(tracking_uri: str, name: str) -> str | None:
    from mlflow.tracking import MlflowClient

    from sweeplab.tracking import quiet_mlflow_logs

    quiet_mlflow_logs()
    try:
        experiment = MlflowClient(tracking_uri).get_experiment_by_name(name)
    except Exception:  # the store is not there yet, or not reachable: the server will say so
        return None
    return experiment.experiment_id if experiment is not None else None
