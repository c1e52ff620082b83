"""``load_model``: a study's trained model from a run id, a ``runs:/`` URI or a ``models:/`` URI."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeplab.record import (
    CHECKPOINT_FILE,
    DESCRIPTION_FILE,
    LOGGED_MODEL_URI,
    MLFLOW_MODEL_NAME,
    MODEL_VERSION_URI,
    RUN_ID_PATTERN,
    RUN_MODEL_URI,
    ModelDescription,
    model_uri_problem,
)

if TYPE_CHECKING:
    from sweeplab.serving._module import PhysicalModel

__all__ = ["load_model", "model_location"]


def model_location(uri: str, tracking_uri: str) -> str:
    """Where the MLflow Model named by ``uri`` is stored, looked up in the store ``tracking_uri`` (also the
    registry). MLflow's own resolution of ``models:/`` reads the process's global registry URI; this one is
    explicit, so loading from two stores in one process works. LookupError when there is no such model."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    uri = uri.strip()
    try:
        if RUN_ID_PATTERN.fullmatch(uri) or (run := RUN_MODEL_URI.fullmatch(uri)):
            return _run_model(client, uri if RUN_ID_PATTERN.fullmatch(uri) else run["run"])
        if logged := LOGGED_MODEL_URI.fullmatch(uri):
            return client.get_logged_model(logged["id"]).artifact_location
        if version := MODEL_VERSION_URI.fullmatch(uri):
            number = version["version"] or client.get_model_version_by_alias(version["name"], version["alias"]).version
            return client.get_model_version_download_uri(version["name"], number)
    except MlflowException as error:
        raise LookupError(f"no sweeplab model at {uri!r} in {tracking_uri}: {error.message}") from None
    raise LookupError(model_uri_problem(uri))


def _run_model(client: Any, run_id: str) -> str:
    """The run's MLflow Model (the last one logged, if a run logged several)."""
    run = client.get_run(run_id)
    outputs = run.outputs.model_outputs if run.outputs is not None else []
    for output in reversed(outputs):
        model = client.get_logged_model(output.model_id)
        if model.name == MLFLOW_MODEL_NAME:
            return model.artifact_location
    raise LookupError(f"run {run_id} has no MLflow Model (only the best trials of a study have one)")


def load_model(uri: str, tracking_uri: str | None = None) -> PhysicalModel:
    """The trained module of a best trial, in eval mode on the CPU: inputs in physical units, (batch, channels,
    *grid), to outputs in physical units (the normalisers fitted on the training split included).

    ``uri``: a trial's run id, ``runs:/<run id>[/mlflow_model]``, ``models:/<study>@best``,
    ``models:/<study>@best-<label>``, ``models:/<study>/<version>`` or ``models:/<model id>``. ``tracking_uri``:
    the store (also its registry), default ``$MLFLOW_TRACKING_URI`` or sweeplab's default store. The torch-module
    counterpart of ``mlflow.pyfunc.load_model`` (``mlflow.pytorch.load_model`` would need a pickled module).
    Raises LookupError when there is no such model."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from sweeplab.serving._flavor import model_folder
    from sweeplab.serving._module import rebuild
    from sweeplab.spec import DEFAULT_TRACKING_URI
    from sweeplab.tracking import quiet_mlflow_logs

    quiet_mlflow_logs()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a few files: no bars
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    location = model_location(uri, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="sweeplab-load-") as folder:
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=folder, tracking_uri=tracking_uri
            )
            data = model_folder(Path(path))
        except (MlflowException, OSError, ValueError) as error:
            message = getattr(error, "message", str(error))
            raise LookupError(f"no sweeplab model at {uri!r} ({location}): {message}") from None
        description = ModelDescription.from_json((data / DESCRIPTION_FILE).read_text())
        return rebuild(description, data / CHECKPOINT_FILE)
