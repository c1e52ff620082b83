"""The Model Registry: a study's best models as versions of the registered model named after the study, the
aliases ``best`` and ``best-<label>`` on the best version overall and of each architecture. Through one
``MlflowClient``, so the same code serves SQLite, PostgreSQL and a tracking server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sweeplab.record import VERSION_VALUE_TAG

if TYPE_CHECKING:
    from mlflow.entities import LoggedModel
    from mlflow.tracking import MlflowClient

__all__ = ["register_version"]


def register_version(
    client: MlflowClient,
    name: str,
    model: LoggedModel,
    run_id: str,
    tags: Mapping[str, str],
    aliases: Sequence[str],
    value: float,
    minimize: bool,
) -> str:
    """A new version of registered model ``name`` (created if new) from logged ``model`` of run
    ``run_id``; each of ``aliases`` moves to it unless it names a version with a better ``value`` (another worker
    may have registered a better trial first). Returns the version."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description=f"best models of sweeplab study {name!r}")
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":  # another worker created it first: fine
            raise
    # The source is the logged model's storage location: with ``models:/<model id>`` the SQL registry would look the
    # model up through the process's global tracking URI, not this client's (MLflow 3.x).
    version = client.create_model_version(
        name, source=model.artifact_location, run_id=run_id, tags=dict(tags), model_id=model.model_id
    ).version
    for alias in aliases:
        if _holds_better(client, name, alias, value, minimize):
            continue
        client.set_registered_model_alias(name, alias, version)
    return str(version)


def _holds_better(client: MlflowClient, name: str, alias: str, value: float, minimize: bool) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(name, alias)
    except MlflowException:  # no such alias yet
        return False
    recorded = current.tags.get(VERSION_VALUE_TAG)
    if recorded is None:
        return False
    return float(recorded) < value if minimize else float(recorded) > value
