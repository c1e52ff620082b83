"""Read what a study recorded: its trials from the Optuna storage, their runs through MLflow's tracking API (so the
same code reads SQLite, PostgreSQL and a remote tracking server)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeplab.record import (
    CONFIRM_DIRECTION_TAG,
    CONFIRM_METRIC_TAG,
    CONFIRM_OF_TAG,
    CONFIRM_ROLE,
    EPOCHS_METRIC,
    FIT_SECONDS_METRIC,
    INTERRUPTED_ATTR,
    MODEL_ATTR,
    MODEL_TAG,
    N_PARAMS,
    OBJECTIVE_PARAM,
    PARENT_RUN_ATTR,
    PARENT_RUN_TAG,
    ROLE_TAG,
    RUN_ATTR,
    SEED_PARAM,
    TRANSFER_OF_TAG,
    TRANSFER_ROLE,
    TRANSFER_TARGET_TAG,
    objective_metrics,
)
from sweeplab.spec import MODEL_PARAM

if TYPE_CHECKING:
    import optuna
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


class CompareError(Exception):
    """A study that cannot be compared (not found, no tracking records, an unknown metric): the message says why."""


@dataclass(frozen=True)
class StudySource:
    """Where one study lives: its name, its Optuna storage and its MLflow tracking store."""

    name: str
    storage: str
    tracking_uri: str


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the comparison sees it: Optuna's state and parameters joined with its MLflow run."""

    number: int
    state: str
    """COMPLETE, PRUNED, FAIL, RUNNING or WAITING (Optuna's trial states)."""
    architecture: str
    """The model's label in the study (``model`` parameter): what the comparison groups by."""
    params: dict[str, Any]
    value: float | None
    """The compared metric; only complete trials have one."""
    interrupted: bool = False
    """Failed by Ctrl-C or SIGTERM and queued again: not a failure of the architecture."""
    run_id: str | None = None
    seed: str | None = None
    n_params: int | None = None
    fit_seconds: float | None = None
    epochs: int | None = None

    @property
    def seconds_per_epoch(self) -> float | None:
        if self.fit_seconds is None or not self.epochs:
            return None
        return self.fit_seconds / self.epochs


@dataclass(frozen=True)
class ConfirmRecord:
    """One finished confirmation run: an architecture's best trial trained again from a fresh seed, tested."""

    architecture: str
    trial: int
    """The trial whose configuration it repeats."""
    seed: int
    metric: str
    direction: str
    value: float | None
    started: int
    """Start time (ms since the epoch): a study confirmed again after more search has newer runs."""


@dataclass(frozen=True)
class TransferRecord:
    """One finished transfer run (strategy transfer): an architecture's best proxy trial trained at a target width."""

    architecture: str
    trial: int
    """The proxy trial whose hyperparameters it trains."""
    target: int
    metrics: dict[str, float]
    """Its last value of every metric it logged (the compared one, the test metrics)."""


@dataclass
class StudyRecords:
    """Everything recorded about one study that the comparison needs."""

    source: StudySource
    metric: str
    direction: str
    """``minimize`` or ``maximize``: how the compared metric is judged."""
    objective_metric: str
    """The metric Optuna optimised (the first objective): its history is the learning curve."""
    parent_run_id: str
    trials: list[TrialRecord]
    study: optuna.Study = field(repr=False)
    client: MlflowClient = field(repr=False)
    confirmations: list[ConfirmRecord] = field(default_factory=list)
    """The finished runs of the confirmation stage, if the study declared one."""
    transfers: list[TransferRecord] = field(default_factory=list)
    """The finished runs of the transfer stage (strategy transfer)."""

    @property
    def name(self) -> str:
        return self.source.name

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of one run's metric, step = epoch."""
        history = self.client.get_metric_history(run_id, key)
        return sorted((m.step, m.value) for m in history)


def resolve_source(argument: str, storage: str | None, tracking_uri: str | None) -> StudySource:
    """A study YAML (its name and stores; ``storage``/``tracking_uri`` override them) or a study name."""
    from sweeplab.spec import DEFAULT_STORAGE, DEFAULT_TRACKING_URI, load_study

    path = Path(argument)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        study = load_study(path)  # StudyError: the caller reports it
        return StudySource(study.name, storage or study.spec.storage, tracking_uri or study.spec.tracking.uri)
    return StudySource(argument, storage or DEFAULT_STORAGE, tracking_uri or DEFAULT_TRACKING_URI)


def load_records(source: StudySource, metric: str | None = None) -> StudyRecords:
    """Read one study; ``metric`` defaults to its (first) objective."""
    import optuna

    from sweeplab.run._storage import storage_for_reading
    from sweeplab.tracking import quiet_mlflow_logs

    _require_database(source.storage, "Optuna storage")
    _require_database(source.tracking_uri, "MLflow tracking store")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quiet_mlflow_logs()
    storage = storage_for_reading(source.storage)
    try:
        study = optuna.load_study(study_name=source.name, storage=storage)
    except KeyError:
        known = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "none"
        raise CompareError(f"no study {source.name!r} in {_shown(source.storage)} (studies there: {known})") from None
    parent_run_id = study.user_attrs.get(PARENT_RUN_ATTR)
    if parent_run_id is None:
        raise CompareError(f"study {source.name!r} has no MLflow parent run (was it run by sweeplab?)")

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=source.tracking_uri)
    try:
        parent = client.get_run(parent_run_id)
    except MlflowException:
        raise CompareError(
            f"study {source.name!r}: its MLflow parent run {parent_run_id} is not in {_shown(source.tracking_uri)} "
            "(pass the study's --tracking-uri)"
        ) from None
    if OBJECTIVE_PARAM not in parent.data.params:
        raise CompareError(f"study {source.name!r}: its parent run {parent_run_id} records no objective")
    objectives = objective_metrics(parent.data.params[OBJECTIVE_PARAM])
    metric = metric or objectives[0]
    runs = {run.info.run_id: run for run in _child_runs(client, parent)}
    if metric in objectives:
        index = objectives.index(metric)
        direction = study.directions[index].name.lower()
    else:
        if not any(metric in run.data.metrics for run in runs.values()):
            logged = sorted({key for run in runs.values() for key in run.data.metrics})
            raise CompareError(f"study {source.name!r}: no run logged {metric!r} (logged: {', '.join(logged)})")
        index, direction = None, study.directions[0].name.lower()
    trials = [_trial_record(trial, runs, metric, index) for trial in study.get_trials(deepcopy=False)]
    confirmations = [_confirm_record(run) for run in runs.values() if _is_finished_confirmation(run)]
    transfers = [
        TransferRecord(
            run.data.tags[MODEL_TAG],
            int(run.data.tags[TRANSFER_OF_TAG]),
            int(run.data.tags[TRANSFER_TARGET_TAG]),
            dict(run.data.metrics),
        )
        for run in sorted(runs.values(), key=lambda run: run.info.start_time)
        if run.data.tags.get(ROLE_TAG) == TRANSFER_ROLE and run.info.status == "FINISHED"
    ]
    return StudyRecords(
        source, metric, direction, objectives[0], parent_run_id, trials, study, client, confirmations, transfers
    )


def _is_finished_confirmation(run: Run) -> bool:
    return run.data.tags.get(ROLE_TAG) == CONFIRM_ROLE and run.info.status == "FINISHED"


def _confirm_record(run: Run) -> ConfirmRecord:
    tags = run.data.tags
    metric = tags[CONFIRM_METRIC_TAG]
    value = run.data.metrics.get(metric)
    return ConfirmRecord(
        architecture=tags[MODEL_TAG],
        trial=int(tags[CONFIRM_OF_TAG]),
        seed=int(run.data.params[SEED_PARAM]),
        metric=metric,
        direction=tags[CONFIRM_DIRECTION_TAG],
        value=value if value is not None and math.isfinite(value) else None,
        started=run.info.start_time,
    )


def _child_runs(client: MlflowClient, parent: Run) -> Iterator[Run]:
    token = None
    while True:
        page = client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.{PARENT_RUN_TAG} = '{parent.info.run_id}'",
            max_results=1000,
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def _trial_record(
    trial: optuna.trial.FrozenTrial, runs: dict[str, Run], metric: str, objective_index: int | None
) -> TrialRecord:
    run = runs.get(trial.user_attrs.get(RUN_ATTR, ""))
    metrics = run.data.metrics if run is not None else {}
    params = run.data.params if run is not None else {}
    complete = trial.state.name == "COMPLETE"
    if not complete:
        value = None
    elif objective_index is not None:
        value = trial.values[objective_index]
    else:
        value = metrics.get(metric)
    if value is not None and not math.isfinite(value):
        value = None  # a NaN logged for another metric ranks nowhere
    n_params = params.get(N_PARAMS)
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        architecture=str(trial.user_attrs.get(MODEL_ATTR) or trial.params.get(MODEL_PARAM, "?")),
        params=dict(trial.params),
        value=value,
        interrupted=bool(trial.user_attrs.get(INTERRUPTED_ATTR)),
        run_id=run.info.run_id if run is not None else None,
        seed=params.get(SEED_PARAM),
        n_params=int(n_params) if n_params is not None else None,
        fit_seconds=metrics.get(FIT_SECONDS_METRIC),
        epochs=int(metrics[EPOCHS_METRIC]) if EPOCHS_METRIC in metrics else None,
    )


def _require_database(url: str, what: str) -> None:
    """Opening a missing SQLite or journal file would create an empty store: say that nothing is there instead."""
    from sweeplab.run._storage import storage_exists

    if not storage_exists(url):
        raise CompareError(f"no {what} at {url} (run the study first, or pass its --storage/--tracking-uri)")


def _shown(url: str) -> str:
    from sweeplab._provenance import redacted

    return redacted(url)
