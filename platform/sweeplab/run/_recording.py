"""A study's MLflow records: its parent run, one run per trial attempt, each architecture's best model (checkpoint,
MLflow Model, Model Registry version and aliases), the best value or Pareto front so far. Names come from
``sweeplab.record``; the writes that must not stop a study when the tracking store is down say so (never raises)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeplab._provenance import redacted
from sweeplab.record import (
    ARCHITECTURE_TAG,
    ATTEMPT_TAG,
    BEST_ALIAS,
    BEST_RUN_TAG,
    BEST_TRIAL_TAG,
    CONFIRM_DIRECTION_TAG,
    CONFIRM_METRIC_TAG,
    CONFIRM_OF_TAG,
    CONFIRM_ROLE,
    DESCRIPTION_FILE,
    MODEL_DIR,
    MODEL_TAG,
    OBJECTIVE_PARAM,
    PARENT_RUN_ATTR,
    PARENT_RUN_TAG,
    PARETO_TAG,
    REASON_ATTR,
    REASON_TAG,
    RESOLVED_STUDY_ARTIFACT,
    ROLE_TAG,
    RUN_ATTR,
    SEED_PARAM,
    SPEC_HASH_ATTR,
    STATE_TAG,
    STORAGE_TAG,
    STUDY_ARTIFACT,
    STUDY_ROLE,
    STUDY_TAG,
    TRANSFER_OF_TAG,
    TRANSFER_ROLE,
    TRANSFER_TARGET_TAG,
    TRIAL_ROLE,
    TRIAL_TAG,
    VERSION_DATA_TAG,
    VERSION_OBJECTIVE_TAG,
    VERSION_RUN_TAG,
    VERSION_VALUE_TAG,
    WORKER_TAG,
    ModelDescription,
    best_alias,
    objective_text,
)
from sweeplab.tracking import TrackedRun

if TYPE_CHECKING:
    import optuna
    from rich.console import Console

    from sweeplab.data import OperatorData
    from sweeplab.spec import Study, TrialPlan
    from sweeplab.tracking import Tracker

_MAX_TAG_CHARS = 5000
_EXAMPLE_SAMPLES = 1  # test samples in a best model's input example (stored as JSON by MLflow)


class StudyRecorder:
    """What one worker of ``study`` writes to MLflow through ``tracker``; ``provenance`` tags every run and
    ``data_identity`` names the data set's content; ``data`` gives a best model its input example."""

    def __init__(
        self,
        study: Study,
        tracker: Tracker,
        storage: str,
        provenance: dict[str, str],
        data_identity: str,
        console: Console,
        data: OperatorData | None = None,
    ) -> None:
        self.study = study
        self.data = data
        self.tracker = tracker
        self.storage = storage
        self.provenance = provenance
        self.data_identity = data_identity
        self.console = console
        self.parent_run_id = ""

    def spec_hash(self) -> str:
        return hashlib.sha256(self.study.spec.model_dump_json().encode()).hexdigest()

    def data_record(self) -> dict[str, Any]:
        """What identifies the data set, for the parent run and every trial run: name, content hash, parameters."""
        params = {f"data.{k}": v for k, v in self.study.data_params.items()}
        return {"data.name": self.study.spec.data.name, "data.identity": self.data_identity, **params}

    # -- the parent run --------------------------------------------------------------------------------------------
    def open_parent(self, optuna_study: optuna.Study, n_trials: int | None) -> str:
        """The study's parent run: a new one, or the one a resumed study started with, running again."""
        spec = self.study.spec
        previous = optuna_study.user_attrs.get(PARENT_RUN_ATTR)
        previous_hash = optuna_study.user_attrs.get(SPEC_HASH_ATTR)
        if previous_hash is not None and previous_hash != self.spec_hash():
            self.console.print(
                f"[yellow]note:[/] study {spec.name!r} exists with a different spec; its trials are kept and the "
                "search goes on with the new one"
            )
        resume = previous if previous is not None and self.tracker.run_exists(previous) else None
        tags = {ROLE_TAG: STUDY_ROLE, STUDY_TAG: spec.name, STORAGE_TAG: redacted(self.storage), **self.provenance}
        params = {
            "sampler": spec.sampler.name,
            "pruner": spec.pruner.name,
            "n_trials": n_trials,
            OBJECTIVE_PARAM: objective_text(self.study.directions, self.study.metrics),
            "models": ", ".join(plan.key for plan in self.study.models),
            SEED_PARAM: spec.trainer.seed,
            "max_epochs": spec.trainer.max_epochs,
            **self.data_record(),
        }
        parent = self.tracker.open_run(spec.name, tags, run_id=resume)
        if resume is None:
            optuna_study.set_user_attr(PARENT_RUN_ATTR, parent)  # first, so a failure below cannot orphan it
            # MLflow params are immutable once written: a resumed parent keeps the ones it was created with.
            self.tracker.log(parent, params=params)
            self.tracker.log_text(parent, self.study.text, STUDY_ARTIFACT)
            self.tracker.log_text(parent, self.study.resolved_yaml(), RESOLVED_STUDY_ARTIFACT)
        optuna_study.set_user_attr(SPEC_HASH_ATTR, self.spec_hash())
        self.parent_run_id = parent
        return parent

    def end_parent(self, status: str) -> None:
        """End the parent run; never raises (a worker on its way out of an outage must still exit cleanly)."""
        self._never_raising(self.parent_run_id, lambda: self.tracker.end_run(self.parent_run_id, status))

    def record_best(self, trial: optuna.trial.FrozenTrial, best: list[optuna.trial.FrozenTrial]) -> None:
        """After each finished ``trial``: the parent records the best value so far (one point per trial, at the
        trial's number) and the best trial's run, or the front of a multi-objective study; never raises."""
        if len(best) > 1 or len(self.study.metrics) > 1:
            front = ",".join(str(t.number) for t in best)
            tags = {PARETO_TAG: front}
            self._never_raising(self.parent_run_id, lambda: self.tracker.log(self.parent_run_id, tags=tags))
            return
        self._never_raising(
            self.parent_run_id,
            lambda: self.tracker.log(
                self.parent_run_id,
                metrics={f"best_{self.study.metrics[0]}": best[0].values[0]},
                tags={BEST_TRIAL_TAG: best[0].number, BEST_RUN_TAG: best[0].user_attrs[RUN_ATTR]},
                step=trial.number,
            ),
        )

    # -- trial runs ------------------------------------------------------------------------------------------------
    def open_trial_run(self, trial: optuna.Trial, plan: TrialPlan, attempt: int = 1) -> TrackedRun:
        spec = self.study.spec
        tags = {
            ROLE_TAG: TRIAL_ROLE,
            STUDY_TAG: spec.name,
            TRIAL_TAG: str(trial.number),
            ATTEMPT_TAG: str(attempt),
            ARCHITECTURE_TAG: plan.model_name,
            MODEL_TAG: plan.model_key,
            STATE_TAG: "RUNNING",
            WORKER_TAG: f"{platform.node()}:{os.getpid()}",  # which of a study's workers ran it
            **self.provenance,
        }
        params = {
            **plan.flat_params(),
            SEED_PARAM: spec.trainer.seed,
            **self.data_record(),
            "optuna.trial": trial.number,
        }
        name = f"trial-{trial.number:03d}-{plan.model_key}"
        run = TrackedRun(self.tracker, self.tracker.open_run(name, tags, parent_run_id=self.parent_run_id))
        trial.set_user_attr(RUN_ATTR, run.run_id)  # before anything else can fail, so the run can always be closed
        run.log(params=params)
        return run

    # -- runs after the search: confirmation and transfer ---------------------------------------------------------
    def _open_stage_run(self, name: str, plan: TrialPlan, tags: dict[str, str], params: dict[str, Any]) -> TrackedRun:
        tags = {
            STUDY_TAG: self.study.spec.name,
            ARCHITECTURE_TAG: plan.model_name,
            MODEL_TAG: plan.model_key,
            STATE_TAG: "RUNNING",
            WORKER_TAG: f"{platform.node()}:{os.getpid()}",
            **tags,
            **self.provenance,
        }
        run = TrackedRun(self.tracker, self.tracker.open_run(name, tags, parent_run_id=self.parent_run_id))
        run.log(params={**plan.flat_params(), **self.data_record(), **params})
        return run

    def _finished_stage_runs(self, role: str) -> list[Any]:
        finished = (
            f"tags.`{PARENT_RUN_TAG}` = '{self.parent_run_id}' AND tags.`{ROLE_TAG}` = '{role}' "
            "AND attributes.status = 'FINISHED'"
        )
        return self.tracker.client.search_runs([self.tracker.experiment_id], finished, max_results=50000)

    def open_confirm_run(self, plan: TrialPlan, trial_number: int, seed: int) -> TrackedRun:
        """A child run training trial ``trial_number``'s configuration again from ``seed``."""
        confirm = self.study.spec.confirm
        assert confirm is not None
        tags = {
            ROLE_TAG: CONFIRM_ROLE,
            CONFIRM_OF_TAG: str(trial_number),
            CONFIRM_METRIC_TAG: confirm.metric,
            CONFIRM_DIRECTION_TAG: self.study.confirm_direction,
        }
        params = {SEED_PARAM: seed, "confirm_of": trial_number}
        return self._open_stage_run(f"confirm-{plan.model_key}-seed-{seed}", plan, tags, params)

    def finished_confirmations(self) -> set[tuple[int, int]]:
        """``(trial, seed)`` of the confirmation runs that finished: a resumed study does not train them again."""
        runs = self._finished_stage_runs(CONFIRM_ROLE)
        return {(int(run.data.tags[CONFIRM_OF_TAG]), int(run.data.params[SEED_PARAM])) for run in runs}

    def open_transfer_run(self, plan: TrialPlan, trial_number: int, target: int) -> TrackedRun:
        """A child run training proxy trial ``trial_number``'s configuration at the ``target`` width (``plan``)."""
        tags = {ROLE_TAG: TRANSFER_ROLE, TRANSFER_OF_TAG: str(trial_number), TRANSFER_TARGET_TAG: str(target)}
        params = {SEED_PARAM: self.study.spec.trainer.seed, "transfer_of": trial_number}
        return self._open_stage_run(f"transfer-{plan.model_key}-{target}", plan, tags, params)

    def finished_transfers(self) -> set[tuple[int, int]]:
        """``(proxy trial, target)`` of the transfer runs that finished: a resumed study does not train them again."""
        runs = self._finished_stage_runs(TRANSFER_ROLE)
        return {(int(run.data.tags[TRANSFER_OF_TAG]), int(run.data.tags[TRANSFER_TARGET_TAG])) for run in runs}

    def log_best_model(
        self, run: TrackedRun, checkpoint: Path, plan: TrialPlan, trial: optuna.trial.FrozenTrial, aliases: list[str]
    ) -> None:
        """A new best trial, overall or of its architecture: its weights and how to rebuild the model go to its run,
        then (with the data at hand) its MLflow Model, registered under the study's name with ``aliases`` (see
        ``aliases_for``)."""
        description = checkpoint.parent / DESCRIPTION_FILE
        rebuild = self.model_description(plan)
        description.write_text(rebuild.to_json())
        run.log_artifact(checkpoint, MODEL_DIR)
        run.log_artifact(description, MODEL_DIR)
        if self.data is None:
            return
        try:
            self.register_model(run.run_id, checkpoint, rebuild, plan, trial, aliases)
        except Exception as error:  # the checkpoint is recorded; only the MLflow Model or its version is missing
            self.console.print(f"[yellow]warning:[/] could not log trial {trial.number}'s MLflow Model: {error}")

    def aliases_for(self, plan: TrialPlan, overall: bool, of_architecture: bool) -> list[str]:
        """``best`` for the best trial of a single-objective study, ``best-<label>`` for its architecture's best."""
        single = len(self.study.metrics) == 1
        return ([BEST_ALIAS] if overall and single else []) + ([best_alias(plan.model_key)] if of_architecture else [])

    def model_description(self, plan: TrialPlan) -> ModelDescription:
        """What rebuilds the trained module of a trial of ``plan`` around its checkpoint."""
        from sweeplab_modules.registry import MODELS

        spec = self.study.spec
        in_channels, out_channels = self.study.data_channels
        window = self.data.time_window if self.data is not None else None
        # How the network was converted for training: transfer trains its trials and targets as optuna does.
        strategy = ("self_tuning" if spec.strategy == "self_tuning" else "optuna") if spec.hyperparameters else "plain"
        return ModelDescription(
            plan.model_name,
            plan.model_params,
            plan.training.model_dump(),
            task=self.study.task.target,
            in_channels=in_channels,
            out_channels=out_channels,
            strategy=strategy,
            hyperparameters={name: h.model_dump() for name, h in spec.hyperparameters.items()},
            time_window=dataclasses.asdict(window) if window is not None else None,
            horizon=int(self.data.y_test.shape[1]) if window is not None and self.data is not None else None,
            input_shape=list(self.data.x_test.shape[1:]) if self.data is not None else None,
            resolution_invariant=MODELS[plan.model_name].resolution_invariant,
        )

    def register_model(
        self,
        run_id: str,
        checkpoint: Path,
        description: ModelDescription,
        plan: TrialPlan,
        trial: optuna.trial.FrozenTrial,
        aliases: list[str],
    ) -> str:
        """The trial's MLflow Model (input example: test samples) and its version of the study's registered model,
        tagged with the trial run, the data identity and the objective; returns the version."""
        from sweeplab.serving import log_mlflow_model, register_version

        assert self.data is not None
        client = self.tracker.client
        example = self.data.x_test[:_EXAMPLE_SAMPLES]
        model = log_mlflow_model(client, self.tracker.experiment_id, run_id, checkpoint, description, example)
        value = trial.values[0]
        tags = {
            VERSION_RUN_TAG: run_id,
            STUDY_TAG: self.study.name,
            TRIAL_TAG: str(trial.number),
            MODEL_TAG: plan.model_key,
            ARCHITECTURE_TAG: plan.model_name,
            VERSION_DATA_TAG: self.data_identity,
            VERSION_OBJECTIVE_TAG: objective_text(self.study.directions, self.study.metrics),
            VERSION_VALUE_TAG: repr(float(value)),
        }
        minimize = self.study.directions[0] == "minimize"
        return register_version(client, self.study.name, model, run_id, tags, aliases, value, minimize)

    def flush(self, run: TrackedRun) -> None:
        """Write the run's buffered metrics; never raises."""
        self._never_raising(run.run_id, run.metrics.flush)

    def end_trial(self, trial: optuna.Trial, run: TrackedRun | None, status: str, state: str, reason: str) -> None:
        """Record the trial's outcome on its run and end it; never raises, so the outcome reaches Optuna whatever
        MLflow does."""
        if reason:
            try:
                trial.set_user_attr(REASON_ATTR, reason[:_MAX_TAG_CHARS])
            except Exception as error:  # the database is away, or the trial was failed as lost meanwhile
                self.console.print(f"[yellow]warning:[/] trial {trial.number}'s reason not recorded: {error}")
        if run is not None:
            self.close_run(run, status, {STATE_TAG: state} | ({REASON_TAG: reason} if reason else {}))

    def close_run(self, run: TrackedRun, status: str, tags: dict[str, str]) -> None:
        """Flush the run's metrics and end it; never raises (the tracking store may be down)."""
        tags = {key: value[:_MAX_TAG_CHARS] for key, value in tags.items()}
        self._never_raising(run.run_id, run.metrics.flush)
        self._never_raising(run.run_id, lambda: run.end(status, tags))

    def close_lost_run(self, run_id: str, reason: str) -> None:
        """The run of a trial whose worker was lost ends KILLED; never raises, so the trial is still retried."""
        try:
            if self.tracker.client.get_run(run_id).info.status == "RUNNING":
                self.tracker.end_run(run_id, "KILLED", {STATE_TAG: "FAIL", REASON_TAG: reason})
        except Exception as error:  # the tracking store is down: the run stays open, the trial is retried
            self.console.print(f"[yellow]warning:[/] could not close MLflow run {run_id}: {error}")

    def close_orphan_runs(self, optuna_study: optuna.Study) -> None:
        """Trial runs left RUNNING although no trial runs any more: their worker could not record the outcome
        (the tracking store was down at that moment). Each ends with its trial's state."""
        from optuna.trial import TrialState

        trials = {t.user_attrs.get(RUN_ATTR): t for t in optuna_study.get_trials(deepcopy=False)}
        running = f"tags.`{PARENT_RUN_TAG}` = '{self.parent_run_id}' AND attributes.status = 'RUNNING'"
        for found in self.tracker.client.search_runs([self.tracker.experiment_id], running, max_results=50000):
            trial = trials.get(found.info.run_id)
            state = trial.state.name if trial is not None else "FAIL"
            status = "FINISHED" if trial is not None and trial.state != TrialState.FAIL else "KILLED"
            reason = "closed at the end of the study: its worker could not record the outcome"
            self.tracker.end_run(found.info.run_id, status, {STATE_TAG: state, REASON_TAG: reason})

    def _never_raising(self, run_id: str, write: Any) -> None:
        try:
            write()
        except Exception as error:  # the tracking store is down: Optuna still records the state
            self.console.print(f"[yellow]warning:[/] MLflow run {run_id}: {error}")
