"""The record contract: what a study writes and its readers read, spelled once.

Writers (the engine in ``sweeplab.run``, the trainers in ``sweeplab.training`` and ``sweeplab.strategies``) and
readers (``sweeplab.compare``, the stale-trial recovery, the storage's budget, ``replay``, ``sweeplab studies``)
import these names; no other module spells an attribute name, a tag key or an artifact path. A study's records:

- Optuna, on the study: ``PARENT_RUN_ATTR`` (its MLflow parent run), ``SPEC_HASH_ATTR``.
- Optuna, on each trial: ``RUN_ATTR`` (its MLflow run), ``MODEL_ATTR`` and ``ARCHITECTURE_ATTR``, ``DEVICE_ATTR``,
  ``REASON_ATTR`` (why it was pruned or failed), ``INTERRUPTED_ATTR`` and ``RETRY_OF_ATTR`` (queued again).
- MLflow: one parent run per study (``ROLE_TAG`` = ``STUDY_ROLE``, the study YAML and its resolved form as
  artifacts, ``OBJECTIVE_PARAM``), one child run per trial attempt (``ROLE_TAG`` = ``TRIAL_ROLE``), with each
  architecture's best model under ``MODEL_DIR`` and as an MLflow Model (``MLFLOW_MODEL_NAME``, a logged model of
  the run), registered under the study's name with the aliases ``BEST_ALIAS`` and ``best_alias(label)``; after the
  search, one child run per architecture and confirmation seed (``ROLE_TAG`` = ``CONFIRM_ROLE``, ``CONFIRM_OF_TAG``
  naming the trial it repeats, ``CONFIRM_METRIC_TAG``); with strategy transfer, one child run per architecture and
  target width (``ROLE_TAG`` = ``TRANSFER_ROLE``, ``TRANSFER_OF_TAG`` naming the proxy trial, ``TRANSFER_TARGET_TAG``).
- The budget: ``finished_trials`` counts what counts against ``n_trials``; ``best_trials`` is the best trial or
  the Pareto front. Confirmation and transfer runs are no Optuna trials: the budget never sees them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ARCHITECTURE_ATTR",
    "ARCHITECTURE_TAG",
    "ATTEMPT_TAG",
    "BEST_ALIAS",
    "BEST_RUN_TAG",
    "BEST_TRIAL_TAG",
    "CHECKPOINT_ARTIFACT",
    "COMMAND_TAG",
    "CONFIRM_DIRECTION_TAG",
    "CONFIRM_METRIC_TAG",
    "CONFIRM_OF_TAG",
    "CONFIRM_ROLE",
    "CHECKPOINT_FILE",
    "DESCRIPTION_ARTIFACT",
    "DESCRIPTION_FILE",
    "DEVICE_ATTR",
    "DEVICE_TAG",
    "EPOCHS_METRIC",
    "FINETUNE_PREFIX",
    "EXPERIMENT_KIND_TAG",
    "FIT_SECONDS_METRIC",
    "GIT_COMMIT_TAG",
    "GIT_DIRTY_TAG",
    "HOST_TAG",
    "INTERRUPTED_ATTR",
    "LOGGED_MODEL_URI",
    "LOSS_PARAM",
    "MLFLOW_MODEL_NAME",
    "MODEL_ATTR",
    "MODEL_DIR",
    "MODEL_TAG",
    "MODEL_TRAINING_KIND",
    "MODEL_VERSION_URI",
    "ModelDescription",
    "N_PARAMS",
    "OBJECTIVE_PARAM",
    "PARENT_RUN_ATTR",
    "PARENT_RUN_TAG",
    "PARETO_TAG",
    "PLAN_ARTIFACT",
    "REASON_ATTR",
    "REASON_TAG",
    "RUN_ID_PATTERN",
    "RUN_MODEL_URI",
    "REPLAY_OF_TAG",
    "REPLAY_ROLE",
    "RESOLVED_STUDY_ARTIFACT",
    "RETRY_OF_ATTR",
    "ROLE_TAG",
    "RUN_ATTR",
    "SCHEDULE_ARTIFACT",
    "SCHEDULE_DIR",
    "SEED_PARAM",
    "SPEC_HASH_ATTR",
    "STATE_TAG",
    "STORAGE_TAG",
    "STUDY_ARTIFACT",
    "STUDY_ROLE",
    "STUDY_TAG",
    "TRANSFER_OF_TAG",
    "TRANSFER_ROLE",
    "TRANSFER_TARGET_TAG",
    "TRIAL_ROLE",
    "TRIAL_TAG",
    "VERSION_DATA_TAG",
    "VERSION_OBJECTIVE_TAG",
    "VERSION_RUN_TAG",
    "VERSION_VALUE_TAG",
    "VERSION_TAG_PREFIX",
    "WORKER_TAG",
    "best_alias",
    "best_trials",
    "finished_trials",
    "model_uri_problem",
    "objective_metrics",
    "objective_text",
]

# -- Optuna user attributes ----------------------------------------------------------------------------------------
PARENT_RUN_ATTR = "sweeplab.mlflow_parent_run_id"
"""On the study: its MLflow parent run."""
SPEC_HASH_ATTR = "sweeplab.spec_sha256"
"""On the study: the SHA-256 of the spec it last ran with (a changed spec is reported on resume)."""
RUN_ATTR = "sweeplab.mlflow_run_id"
"""On a trial: its MLflow run (of its last attempt)."""
REASON_ATTR = "sweeplab.reason"
"""On a pruned or failed trial: why."""
INTERRUPTED_ATTR = "sweeplab.interrupted"
"""On a trial failed by Ctrl-C or SIGTERM: its parameters were queued again by its own worker."""
RETRY_OF_ATTR = "sweeplab.retry_of"
"""On a queued trial: the number of the trial it repeats (an interrupt, a lost worker)."""
MODEL_ATTR = "model"
"""On a trial: the architecture's label in the study (the ``model`` parameter)."""
ARCHITECTURE_ATTR = "architecture"
"""On a trial: the registered architecture's name."""
DEVICE_ATTR = "device"
"""On a running trial: ``<host>/<GPU uuid>`` or ``<host>/cpu``, `` (waiting for memory)`` appended while it waits."""

# -- MLflow tags -----------------------------------------------------------------------------------------------------
PARENT_RUN_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"
"""On a study's experiment: MLflow 3's UI then opens it on its training runs, not on its GenAI overview."""
ROLE_TAG = "sweeplab.role"
STUDY_ROLE, TRIAL_ROLE, REPLAY_ROLE, CONFIRM_ROLE = "study", "trial", "replay", "confirm"
TRANSFER_ROLE = "transfer"
"""A transfer target: a trial's configuration trained at a target width after the search (strategy transfer)."""
STUDY_TAG = "sweeplab.study"
STORAGE_TAG = "sweeplab.storage"
TRIAL_TAG = "sweeplab.trial"
ATTEMPT_TAG = "sweeplab.attempt"
"""More than 1 after running out of memory beside other trials."""
ARCHITECTURE_TAG = "sweeplab.architecture"
MODEL_TAG = "sweeplab.model"
STATE_TAG = "sweeplab.state"
"""RUNNING while a trial trains, then its Optuna state (COMPLETE, PRUNED, FAIL) or RETRIED."""
REASON_TAG = "sweeplab.reason"
WORKER_TAG = "sweeplab.worker"
DEVICE_TAG = "sweeplab.device"
BEST_TRIAL_TAG = "sweeplab.best_trial"
BEST_RUN_TAG = "sweeplab.best_run_id"
PARETO_TAG = "sweeplab.pareto_trials"
REPLAY_OF_TAG = "sweeplab.replay_of"
CONFIRM_OF_TAG = "sweeplab.confirm_of"
"""On a confirmation run: the number of the trial whose configuration it trains again with a fresh seed."""
TRANSFER_OF_TAG = "sweeplab.transfer_of"
"""On a transfer target's run: the number of the proxy trial whose hyperparameters it trains at the target."""
TRANSFER_TARGET_TAG = "sweeplab.transfer_target"
"""On a transfer target's run: the target value of the transferred parameter (``transfer.parameter``)."""
CONFIRM_METRIC_TAG = "sweeplab.confirm_metric"
CONFIRM_DIRECTION_TAG = "sweeplab.confirm_direction"
"""On a confirmation run: the test metric the confirmation compares, and ``minimize`` or ``maximize``."""
HOST_TAG = "sweeplab.host"
COMMAND_TAG = "sweeplab.command"
VERSION_TAG_PREFIX = "sweeplab.version."
GIT_COMMIT_TAG = "mlflow.source.git.commit"
GIT_DIRTY_TAG = "sweeplab.git.dirty"

# -- MLflow parameters and metrics the readers rely on ---------------------------------------------------------------
OBJECTIVE_PARAM = "objective"
"""On the parent run: ``"minimize val_rel_l2, maximize x"`` (Optuna itself keeps no metric names)."""
SEED_PARAM = "seed"
LOSS_PARAM = "loss"
"""A trial run's training loss as used: the study's, else its task's default."""
N_PARAMS = "n_params"
"""A trial run's parameter and last metric: the model's parameter count."""
FIT_SECONDS_METRIC = "fit_seconds"
EPOCHS_METRIC = "epochs"
FINETUNE_PREFIX = "finetune/"
"""The fine-tuning stage's metrics (``finetune/val_rel_l2``) and, as ``finetune.``, its parameters."""

# -- artifacts -------------------------------------------------------------------------------------------------------
STUDY_ARTIFACT = "study.yaml"
"""On the parent run: the study file as written."""
RESOLVED_STUDY_ARTIFACT = "study.resolved.yaml"
"""On the parent run: the study with every default filled in; what replay and compare rebuild the study from."""
MODEL_DIR = "model"
CHECKPOINT_FILE = "model.ckpt"
DESCRIPTION_FILE = "model.json"
"""How to rebuild the model: a ``ModelDescription`` as JSON."""
CHECKPOINT_ARTIFACT = f"{MODEL_DIR}/{CHECKPOINT_FILE}"
DESCRIPTION_ARTIFACT = f"{MODEL_DIR}/{DESCRIPTION_FILE}"
SCHEDULE_DIR = "self_tuning"
SCHEDULE_ARTIFACT = f"{SCHEDULE_DIR}/schedule.csv"
"""On a self-tuning trial's run: the hyperparameter values per weight step."""
PLAN_ARTIFACT = f"{SCHEDULE_DIR}/plan.json"
"""On a self-tuning trial's run: its trial plan, for replay."""
MLFLOW_MODEL_NAME = "mlflow_model"
"""A best trial's MLflow Model (a logged model of its run: ``runs:/<run id>/mlflow_model``): the checkpoint and
its ``ModelDescription`` with the ``sweeplab`` and ``python_function`` flavours, a signature and an input example."""

# The ways to name a best trial's MLflow Model (``serving.load_model`` resolves them; a data set that needs a
# trained model, as the dcdm solver does, checks its URI's form with ``model_uri_problem`` without MLflow).
RUN_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
RUN_MODEL_URI = re.compile(rf"runs:/(?P<run>[0-9a-f]{{32}})/?(?:{MLFLOW_MODEL_NAME}/?)?")
MODEL_VERSION_URI = re.compile(r"models:/(?P<name>[^@/]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))/?")
LOGGED_MODEL_URI = re.compile(r"models:/(?P<id>m-[0-9a-f]{32})/?")


def model_uri_problem(uri: str) -> str | None:
    """What is wrong with the form of ``uri`` as the name of a sweeplab model (None: nothing)."""
    patterns = (RUN_ID_PATTERN, RUN_MODEL_URI, LOGGED_MODEL_URI, MODEL_VERSION_URI)
    if any(pattern.fullmatch(uri.strip()) for pattern in patterns):
        return None
    return (
        f"{uri!r} names no model: give a run id, runs:/<run id>, models:/<name>@<alias>, models:/<name>/<version> "
        "or models:/<model id>"
    )


# -- the Model Registry ----------------------------------------------------------------------------------------------
BEST_ALIAS = "best"
"""On the registered model named after the study: the version of its best trial (single objective)."""
VERSION_RUN_TAG = "sweeplab.run_id"
"""On a model version: the trial run it came from (also its ``run_id``), with ``STUDY_TAG``, ``TRIAL_TAG`` and
``MODEL_TAG``."""
VERSION_DATA_TAG = "sweeplab.data.identity"
VERSION_OBJECTIVE_TAG = "sweeplab.objective"
"""On a model version: the study's objective, as ``OBJECTIVE_PARAM``."""
VERSION_VALUE_TAG = "sweeplab.objective_value"
"""On a model version: the trial's value of the (first) objective."""


def best_alias(label: str) -> str:
    """The alias of the best version of the architecture labelled ``label`` in the study: ``best-<label>``, with
    any character an alias cannot hold (alphanumerics, ``_`` and ``-`` only) replaced by ``-``."""
    return "best-" + re.sub(r"[^\w-]", "-", label)


@dataclass(frozen=True)
class ModelDescription:
    """``DESCRIPTION_FILE`` beside a best trial's checkpoint: the registered architecture, its constructor
    arguments, and the training configuration (``TrainingConfig`` fields); what rebuilds the trained module
    around the checkpoint's weights: the task (import target) and the model's channels, how the strategy
    converted the architecture (``strategy``: ``plain``, ``optuna`` (regularisers inserted) or ``self_tuning``
    (best-response layers), with the study's ``hyperparameters`` declarations), and for a time series the
    ``time_window`` (``TimeWindow`` fields) and the ``horizon`` a prediction rolls out over; the shape of one
    training input, (channels, *grid), and whether the architecture takes other grids. Descriptions written before
    the rebuild fields existed hold the first three only."""

    architecture: str
    params: dict[str, Any]
    training: dict[str, Any]
    task: str | None = None
    in_channels: int | None = None
    out_channels: int | None = None
    strategy: str = "plain"
    hyperparameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    time_window: dict[str, Any] | None = None
    horizon: int | None = None
    input_shape: list[int] | None = None
    resolution_invariant: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ModelDescription:
        return cls(**json.loads(text))


def objective_text(directions: Sequence[str], metrics: Sequence[str]) -> str:
    """The parent run's ``OBJECTIVE_PARAM``."""
    return ", ".join(f"{direction} {metric}" for direction, metric in zip(directions, metrics, strict=True))


def objective_metrics(text: str) -> list[str]:
    """The metrics of an ``OBJECTIVE_PARAM``, in order."""
    return [part.split()[-1] for part in text.split(",")]


# -- the budget ------------------------------------------------------------------------------------------------------
def finished_trials(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials that count against the budget: complete, pruned or failed, except failures whose parameters were
    queued again (an interrupt, a lost worker): their retry counts instead."""
    from optuna.trial import TrialState

    retried = {t.user_attrs[RETRY_OF_ATTR] for t in trials if RETRY_OF_ATTR in t.user_attrs}
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(
        1
        for t in trials
        if t.state in done
        and not (t.state == TrialState.FAIL and (t.user_attrs.get(INTERRUPTED_ATTR) or t.number in retried))
    )


def best_trials(
    study: optuna.Study, trials: list[optuna.trial.FrozenTrial] | None = None
) -> list[optuna.trial.FrozenTrial]:
    """The best trial, or the Pareto front of a multi-objective study; empty before a trial completes. ``trials``:
    the study's trials when the caller has just read them (one read of the storage instead of two)."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    complete = [
        t for t in (study.get_trials(deepcopy=False) if trials is None else trials) if t.state == TrialState.COMPLETE
    ]
    if not complete:
        return []
    if len(study.directions) > 1:
        return study.best_trials
    sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
    return [min(complete, key=lambda t: (sign * t.values[0], t.number))]
