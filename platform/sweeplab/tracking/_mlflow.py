"""MLflow through its client API only: explicit run ids, safe with several trials in flight."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sweeplab._sqlite import prepare_sqlite
from sweeplab._stores import OutageWait, lost_connection
from sweeplab.record import EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND, PARENT_RUN_TAG

if TYPE_CHECKING:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

# MLflow's log_batch limits per call.
_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100
_MAX_PARAM_CHARS = 6000
# MLflow retries a failed request to a server for about two minutes on its own; a worker waits out an outage
# with its OutageWait instead (which says so, and knows the limit), so a request tries a little and fails.
_SERVER_RETRIES = "2"

_T = TypeVar("_T")


def quiet_mlflow_logs() -> None:
    """Database migrations and MLflow's own info lines would drown the progress display."""
    for name in ("alembic", "mlflow", "mlflow.store.db.utils", "mlflow.tracking"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # It logs every database error with its traceback before raising it: the caller reports it, in one line.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of an embedded SQLite store live beside the database; a server or PostgreSQL has its own root."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    return (database.parent.resolve() / "artifacts").as_uri()


class Tracker:
    """One experiment's runs: a parent per study, a child per trial (nested by the ``mlflow.parentRunId`` tag).

    With an ``outage`` policy, a write that finds the tracking store gone (an MLflow server restarting, its
    database down) waits for it and tries again, up to the policy's limit; without one it raises."""

    def __init__(self, tracking_uri: str, experiment: str, outage: OutageWait | None = None) -> None:
        from mlflow.tracking import MlflowClient

        quiet_mlflow_logs()
        prepare_sqlite(tracking_uri)
        if outage is not None:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", _SERVER_RETRIES)
        self.tracking_uri = tracking_uri
        self.outage = outage
        self.client: MlflowClient = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_id = self._experiment_id(experiment)

    def _write(self, write: Callable[[], _T]) -> _T:
        """``write()``, tried again after each lost connection for as long as the outage policy allows."""
        while True:
            try:
                result = write()
            except Exception as error:
                if self.outage is None or lost_connection(error) is None:
                    raise
                if self.outage.pause(f"MLflow tracking store {self.tracking_uri}", error):
                    raise  # interrupted while waiting: the run is closed when the study ends
                continue
            if self.outage is not None:
                self.outage.recovered()
            return result

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            if existing.tags.get(EXPERIMENT_KIND_TAG) is None:  # created by an older sweeplab
                self.client.set_experiment_tag(existing.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
            return existing.experiment_id
        try:
            return self.client.create_experiment(
                name,
                artifact_location=artifact_location(self.tracking_uri),
                tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND},
            )
        except MlflowException:  # another worker created it between our two calls
            created = self.client.get_experiment_by_name(name)
            if created is None:
                raise
            return created.experiment_id

    def open_run(
        self, name: str, tags: Mapping[str, str], parent_run_id: str | None = None, run_id: str | None = None
    ) -> str:
        """Start a run, or mark an existing one (a resumed study's parent) running again with fresh ``tags``."""
        if run_id is not None:
            self._write(lambda: self.client.update_run(run_id, status="RUNNING"))
            self.log(run_id, tags=tags)
            return run_id
        all_tags = {"mlflow.runName": name, **tags}
        if parent_run_id is not None:
            all_tags[PARENT_RUN_TAG] = parent_run_id
        return self._write(lambda: self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)).info.run_id

    def log(
        self,
        run_id: str,
        metrics: Mapping[str, float] = {},
        params: Mapping[str, Any] = {},
        tags: Mapping[str, Any] = {},
        step: int = 0,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        metric_rows = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        param_rows = [Param(k, _param_text(v)) for k, v in params.items()]
        tag_rows = [RunTag(k, str(v)) for k, v in tags.items()]
        # One call carries all three kinds (a SQLite commit each); more only past MLflow's per-call limits.
        calls = max(
            -(-len(metric_rows) // _MAX_METRICS), -(-len(param_rows) // _MAX_PARAMS), -(-len(tag_rows) // _MAX_TAGS)
        )
        for call in range(calls):
            self._write(
                lambda call=call: self.client.log_batch(
                    run_id,
                    metrics=metric_rows[call * _MAX_METRICS : (call + 1) * _MAX_METRICS],
                    params=param_rows[call * _MAX_PARAMS : (call + 1) * _MAX_PARAMS],
                    tags=tag_rows[call * _MAX_TAGS : (call + 1) * _MAX_TAGS],
                )
            )

    def log_metric_rows(self, run_id: str, rows: list[Metric]) -> None:
        for start in range(0, len(rows), _MAX_METRICS):
            self._write(lambda start=start: self.client.log_batch(run_id, metrics=rows[start : start + _MAX_METRICS]))

    def end_run(self, run_id: str, status: str, tags: Mapping[str, Any] = {}) -> None:
        if tags:
            self.log(run_id, tags=tags)
        self._write(lambda: self.client.set_terminated(run_id, status=status))

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self._write(lambda: self.client.log_text(run_id, text, path))

    def log_artifact(self, run_id: str, local_path: str | Path, artifact_path: str | None = None) -> None:
        self._write(lambda: self.client.log_artifact(run_id, str(local_path), artifact_path))

    def run_exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        return run.info.experiment_id == self.experiment_id and run.info.lifecycle_stage == "active"


def _param_text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 3] + "..."


class TrackedRun:
    """One open MLflow run, the handle its writers share: direct writes, and metric rows buffered for Lightning
    (``metrics``, flushed by whoever ends the run)."""

    def __init__(self, tracker: Tracker, run_id: str, interval: float = 2.0) -> None:
        self.tracker = tracker
        self.run_id = run_id
        self.metrics = MetricBuffer(tracker, run_id, interval)

    def log(
        self, metrics: Mapping[str, float] = {}, params: Mapping[str, Any] = {}, tags: Mapping[str, Any] = {}
    ) -> None:
        self.tracker.log(self.run_id, metrics=metrics, params=params, tags=tags)

    def log_text(self, text: str, path: str) -> None:
        self.tracker.log_text(self.run_id, text, path)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        self.tracker.log_artifact(self.run_id, local_path, artifact_path)

    def end(self, status: str, tags: Mapping[str, Any] = {}) -> None:
        self.tracker.end_run(self.run_id, status, tags)


class MetricBuffer:
    """Collects metric rows and writes them with one ``log_batch`` at most every ``interval`` seconds.

    One synchronous ``log_metric`` costs about 4 ms on SQLite; a batch of a thousand costs about as much as a few.
    """

    def __init__(self, tracker: Tracker, run_id: str, interval: float = 2.0) -> None:
        self.tracker = tracker
        self.run_id = run_id
        self.interval = interval
        self._rows: list[Metric] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def add(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        with self._lock:
            self._rows.extend(Metric(k, float(v), now, step) for k, v in metrics.items())
            due = len(self._rows) >= _MAX_METRICS or time.monotonic() - self._last_flush >= self.interval
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            self._last_flush = time.monotonic()
        if not rows:
            return
        try:
            self.tracker.log_metric_rows(self.run_id, rows)
        except Exception:
            with self._lock:  # keep them for the next attempt rather than lose them
                self._rows[:0] = rows
            raise
