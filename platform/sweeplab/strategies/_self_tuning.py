"""Studies with regularisation hyperparameters: ``strategy: optuna`` trains each trial with sampled values,
``strategy: self_tuning`` makes each trial one Self-Tuning Network run (MacKay et al. 2019) whose schedule is
logged (``hparam/<name>``, ``hparam/<name>_scale`` per weight step, ``self_tuning/schedule.csv``) and whose
final values are recorded as the trial's Optuna parameters ``hp.<name>``, so it stands beside sampled trials.
``replay_run`` trains a fresh, plain model with a recorded schedule."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeplab.record import (
    PARENT_RUN_TAG,
    PLAN_ARTIFACT,
    REPLAY_OF_TAG,
    REPLAY_ROLE,
    RESOLVED_STUDY_ARTIFACT,
    ROLE_TAG,
    SCHEDULE_ARTIFACT,
    SCHEDULE_DIR,
    SEED_PARAM,
    STUDY_TAG,
)
from sweeplab.training import TrialContext, build_seeded_model, build_task, fit_task
from sweeplab_modules.registry import import_target
from sweeplab_modules.stn import OnlineHyperparameter, SelfTuningSettings

if TYPE_CHECKING:
    import optuna

    from sweeplab.spec import Study, TrialPlan
    from sweeplab.training import TrialResult

__all__ = [
    "ReplayOutcome",
    "Trainer",
    "replay_run",
    "train_constant",
    "train_scheduled",
    "train_self_tuning",
    "trial_trainer",
]

Trainer = Callable[[TrialContext], "TrialResult"]


def trial_trainer(study: Study) -> Trainer:
    """How the engine trains a trial of ``study``: ``train_trial`` when the study declares no hyperparameters."""
    if not study.spec.hyperparameters:
        from sweeplab.training import train_trial

        return train_trial
    if study.spec.strategy == "self_tuning":
        return train_self_tuning
    return train_constant


def train_constant(context: TrialContext) -> TrialResult:
    """A sampled trial of a study with regularisation hyperparameters: their values held for the whole training."""
    return train_scheduled(context, [context.plan.hyperparameters])


def train_self_tuning(context: TrialContext) -> TrialResult:
    """One Self-Tuning Network run of the study's architecture and task; the schedule and the plan go to the
    trial's run, the final hyperparameters to its parameters (MLflow and, with a trial, Optuna)."""
    from sweeplab_modules.stn import self_tuning_model, self_tuning_task

    study, plan = context.study, context.plan
    hyperparameters = study.spec.hyperparameters
    settings = SelfTuningSettings(**plan.self_tuning)
    model, space, hyper_context = self_tuning_model(
        build_seeded_model(study, plan), hyperparameters, settings.hypernet_input
    )
    task = build_task(study, plan, model, self_tuning_task(import_target(study.task.target)))
    task.attach(space, hyper_context, settings, study.spec.trainer.gradient_clip_val)
    # Lightning refuses gradient clipping with manual optimisation: the task clips its weight steps itself.
    result = fit_task(context, task, gradient_clip_val=None)
    schedule_path = context.workdir / Path(SCHEDULE_ARTIFACT).name
    _write_schedule(schedule_path, task.schedule)
    context.run.log_artifact(schedule_path, SCHEDULE_DIR)
    context.run.log_text(json.dumps(_plan_record(plan), indent=2), PLAN_ARTIFACT)
    final = _final_values(hyperparameters, space.current())
    context.run.log(params={f"hp.{name}": value for name, value in final.items()})
    if context.trial is not None:
        _record_as_params(context.trial, hyperparameters, final)
    return result


def _final_values(hyperparameters: Mapping[str, OnlineHyperparameter], current: Mapping[str, float]) -> dict[str, Any]:
    """The values the trained network ends with, as applied (a discrete one floored)."""
    return {
        name: min(int(current[name]), int(declared.high)) if declared.discrete else current[name]
        for name, declared in hyperparameters.items()
    }


def _record_as_params(
    trial: optuna.Trial, hyperparameters: Mapping[str, OnlineHyperparameter], final: Mapping[str, Any]
) -> None:
    """``hp.<name>`` as Optuna parameters with the distributions a sampler draws them from (strategy optuna),
    so that a self-tuning trial and sampled trials of one study compare parameter by parameter."""
    for name, declared in hyperparameters.items():
        # Optuna has no call to set a parameter after the fact; a fixed parameter (what enqueue_trial sets)
        # makes suggest record exactly the given value under the usual distribution checks.
        trial._fixed_params[f"hp.{name}"] = final[name]
        if declared.discrete:
            trial.suggest_int(f"hp.{name}", int(declared.low), int(declared.high))
        else:
            trial.suggest_float(f"hp.{name}", declared.low, declared.high)


def _plan_record(plan: TrialPlan) -> dict[str, Any]:
    return {
        "model_key": plan.model_key,
        "model_name": plan.model_name,
        "model_params": plan.model_params,
        "training": plan.training.model_dump(),
        "self_tuning": plan.self_tuning,
    }


def _write_schedule(path: Path, rows: Sequence[Mapping[str, float]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else ["step"])
        writer.writeheader()
        writer.writerows(rows)


def read_schedule(path: Path) -> list[dict[str, float]]:
    with path.open(newline="") as file:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(file)]


class _ScheduledValues:
    """A Lightning callback (built lazily: pytorch_lightning is imported by the caller) that sets the values
    of every regulariser before each training batch: row ``global_step`` of the schedule, the last row after."""

    def __new__(cls, *args: Any) -> Any:
        import pytorch_lightning as pl
        import torch

        from sweeplab_modules.stn import applied_value

        class ScheduledValues(pl.Callback):
            def __init__(
                self,
                context: Any,
                hyperparameters: Mapping[str, OnlineHyperparameter],
                schedule: Sequence[Mapping[str, float]],
            ) -> None:
                self.context = context
                self.hyperparameters = hyperparameters
                self.schedule = schedule

            def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
                row = self.schedule[min(trainer.global_step, len(self.schedule) - 1)]
                values = {
                    name: applied_value(declared, torch.tensor([float(row[name])], device=pl_module.device))
                    for name, declared in self.hyperparameters.items()
                }
                self.context.set(None, values)

        return ScheduledValues(*args)


def train_scheduled(context: TrialContext, schedule: Sequence[Mapping[str, float]]) -> TrialResult:
    """Train the plain architecture (no best-response layers) with the study's regularisers set, at weight step
    ``k``, to row ``k`` of ``schedule`` (one row: constant values, a sampled trial)."""
    from sweeplab_modules.stn import HyperContext, regularised

    study, plan = context.study, context.plan
    hyper_context = HyperContext()
    model = regularised(build_seeded_model(study, plan), study.spec.hyperparameters, hyper_context)
    task = build_task(study, plan, model)
    scheduled = _ScheduledValues(hyper_context, study.spec.hyperparameters, schedule)
    return fit_task(context, task, study.spec.trainer.gradient_clip_val, [scheduled])


@dataclass(frozen=True)
class ReplayOutcome:
    run_id: str
    replay_run_id: str
    metric: str
    self_tuning_value: float | None
    replay_value: float


def replay_run(run_id: str, tracking_uri: str) -> ReplayOutcome:
    """Train a fresh plain model with the schedule recorded by self-tuning run ``run_id``: same study, plan and
    seed; recorded as a new run beside it (tag ``sweeplab.replay_of``)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from sweeplab.data import load_dataset
    from sweeplab.spec import TrialPlan, parse_study
    from sweeplab.tracking import TrackedRun, Tracker
    from sweeplab.training import quiet_lightning
    from sweeplab_modules.training import TrainingConfig

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # three small files: no bars
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        raise LookupError(f"no run {run_id!r} in {tracking_uri}: {error.message}") from None
    parent_id = run.data.tags.get(PARENT_RUN_TAG)
    with tempfile.TemporaryDirectory(prefix="sweeplab-replay-") as folder:
        workdir = Path(folder)
        try:
            schedule = read_schedule(Path(client.download_artifacts(run_id, SCHEDULE_ARTIFACT, folder)))
            record = json.loads(Path(client.download_artifacts(run_id, PLAN_ARTIFACT, folder)).read_text())
        except (MlflowException, OSError):
            raise LookupError(f"run {run_id} has no self-tuning schedule (not a self_tuning trial?)") from None
        if parent_id is None:
            raise LookupError(f"run {run_id} has no parent study run holding the study")
        study_text = Path(client.download_artifacts(parent_id, RESOLVED_STUDY_ARTIFACT, folder)).read_text()
        study = parse_study(study_text, f"run {parent_id}: {RESOLVED_STUDY_ARTIFACT}")
        record["training"] = TrainingConfig(**record["training"])
        plan = TrialPlan(**record)
        quiet_lightning()
        if study.spec.trainer.num_threads is not None:
            import torch

            torch.set_num_threads(study.spec.trainer.num_threads)
        data = load_dataset(study.spec.data.name, study.data_params, data_dir=study.spec.data.dir)
        experiment = client.get_experiment(run.info.experiment_id).name
        tracker = Tracker(tracking_uri, experiment)
        tags = {ROLE_TAG: REPLAY_ROLE, REPLAY_OF_TAG: run_id, STUDY_TAG: study.name}
        replay = TrackedRun(tracker, tracker.open_run(f"replay-{run.info.run_name}", tags, parent_run_id=parent_id))
        replay.log(params={**plan.flat_params(), "replay_of": run_id, SEED_PARAM: study.spec.trainer.seed})
        status = "FAILED"
        try:
            result = train_scheduled(TrialContext(study, plan, data, replay, workdir), schedule)
            status = "FINISHED"
        finally:
            replay.metrics.flush()
            replay.end(status)
    metric = study.metrics[0]
    return ReplayOutcome(run_id, replay.run_id, metric, run.data.metrics.get(metric), result.metrics[metric])
