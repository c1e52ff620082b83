"""Run a study: Optuna samples, Lightning trains, MLflow records; interrupts end cleanly and resume."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import platform
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from sweeplab._console import StudyProgress, format_value
from sweeplab._provenance import provenance_tags, redacted
from sweeplab.spec import MODEL_PARAM, Study, TrialPlan

if TYPE_CHECKING:
    import optuna
    from optuna.trial import TrialState

    from sweeplab.data import OperatorData
    from sweeplab.tracking import MetricBuffer, Tracker

# Optuna user attributes (on the study and its trials) that tie them to MLflow.
PARENT_RUN_ATTR = "sweeplab.mlflow_parent_run_id"
SPEC_HASH_ATTR = "sweeplab.spec_sha256"
RUN_ATTR = "sweeplab.mlflow_run_id"
REASON_ATTR = "sweeplab.reason"
INTERRUPTED_ATTR = "sweeplab.interrupted"
RETRY_OF_ATTR = "sweeplab.retry_of"


@dataclass(frozen=True)
class StudyOutcome:
    study_name: str
    storage: str
    tracking_uri: str
    parent_run_id: str
    finished: int
    best_values: list[float] | None
    best_trial: int | None
    best_model: str | None
    pareto_trials: list[int]
    interrupted: bool


class StudyInterruptedError(KeyboardInterrupt):
    """The study was interrupted; its state is saved and running the same command resumes it."""

    def __init__(self, outcome: StudyOutcome) -> None:
        super().__init__("study interrupted")
        self.outcome = outcome


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


def best_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best trial, or the Pareto front of a multi-objective study; empty before a trial completes."""
    from optuna.trial import TrialState

    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return []
    return [study.best_trial] if len(study.directions) == 1 else study.best_trials


class _InterruptSignal:
    """SIGINT/SIGTERM set an event that running trials check at every batch; a second signal stops at once."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[threading.Event]:
        if threading.current_thread() is not threading.main_thread():
            yield self.event
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self.event
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class StudyRunner:
    def __init__(
        self,
        study: Study,
        storage: str | None = None,
        tracking_uri: str | None = None,
        n_trials: int | None = None,
        console: Console | None = None,
    ) -> None:
        self.study = study
        self.storage = storage or study.spec.storage
        self.tracking_uri = tracking_uri or study.spec.tracking.uri
        budget = study.spec.budget
        self.n_trials = (
            n_trials or budget.n_trials or (study.grid_size() if study.spec.sampler.name == "grid" else None)
        )
        self.console = console or Console(stderr=True)
        self.interrupt = _InterruptSignal()

    # -- setup ---------------------------------------------------------------------------------------------
    def _load_data(self) -> OperatorData:
        from sweeplab.data import load_dataset

        spec = self.study.spec.data
        return load_dataset(spec.name, self.study.data_params, data_dir=spec.dir)

    def _optuna_study(self) -> optuna.Study:
        import optuna

        from sweeplab._recovery import StaleTrialRecovery
        from sweeplab._storage import open_storage
        from sweeplab.strategies import build_pruner, build_sampler

        spec = self.study.spec
        # Optuna would log each failed trial with its traceback; the progress display gives the reason instead.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        heartbeat = spec.heartbeat
        recovery = StaleTrialRecovery(self._close_lost_run, heartbeat.max_retry, heartbeat.grace)
        study = optuna.create_study(
            study_name=spec.name,
            storage=open_storage(self.storage, heartbeat, self.n_trials, recovery),
            sampler=build_sampler(spec.sampler, spec.trainer.seed, len(spec.objectives)),
            pruner=build_pruner(spec.pruner),
            directions=self.study.directions,
            load_if_exists=True,
        )
        started = len(study.get_trials(deepcopy=False))
        if started:
            # A resumed study: a sampler seeded as before would replay its first draws, repeating finished trials.
            study.sampler = build_sampler(spec.sampler, spec.trainer.seed + started, len(spec.objectives))
        elif len(self.study.models) > 1 and spec.sampler.name != "grid":
            # A comparison needs every architecture tried: a sampler's random start can miss one entirely (TPE
            # gave one of three none in its first six trials). The first trials take each once, the rest sampled.
            for plan in self.study.models:
                study.enqueue_trial({MODEL_PARAM: plan.key}, skip_if_exists=True)
        return study

    def _close_lost_run(self, run_id: str, reason: str) -> None:
        """The run of a trial whose worker was lost ends KILLED; never raises, so the trial is still retried."""
        try:
            if self.tracker.client.get_run(run_id).info.status == "RUNNING":
                self.tracker.end_run(run_id, "KILLED", {"sweeplab.state": "FAIL", "sweeplab.reason": reason})
        except Exception as error:  # the tracking store is down: the run stays open, the trial is retried
            self.console.print(f"[yellow]warning:[/] could not close MLflow run {run_id}: {error}")

    def _close_orphan_runs(self, optuna_study: optuna.Study) -> None:
        """Trial runs left RUNNING although no trial runs any more: their worker could not record the outcome
        (the tracking store was down at that moment). Each ends with its trial's state."""
        from optuna.trial import TrialState

        trials = {t.user_attrs.get(RUN_ATTR): t for t in optuna_study.get_trials(deepcopy=False)}
        running = f"tags.`mlflow.parentRunId` = '{self.parent_run_id}' AND attributes.status = 'RUNNING'"
        for run in self.tracker.client.search_runs([self.tracker.experiment_id], running, max_results=50000):
            trial = trials.get(run.info.run_id)
            state = trial.state.name if trial is not None else "FAIL"
            status = "FINISHED" if trial is not None and trial.state != TrialState.FAIL else "KILLED"
            reason = "closed at the end of the study: its worker could not record the outcome"
            self.tracker.end_run(run.info.run_id, status, {"sweeplab.state": state, "sweeplab.reason": reason})

    def _spec_hash(self) -> str:
        return hashlib.sha256(self.study.spec.model_dump_json().encode()).hexdigest()

    def _data_record(self) -> dict[str, Any]:
        """What identifies the data set, for the parent run and every trial run: name, content hash, parameters."""
        params = {f"data.{k}": v for k, v in self.study.data_params.items()}
        return {"data.name": self.study.spec.data.name, "data.identity": self._data.identity, **params}

    def _open_parent(self, optuna_study: optuna.Study, tracker: Tracker) -> str:
        spec = self.study.spec
        previous = optuna_study.user_attrs.get(PARENT_RUN_ATTR)
        previous_hash = optuna_study.user_attrs.get(SPEC_HASH_ATTR)
        if previous_hash is not None and previous_hash != self._spec_hash():
            self.console.print(
                f"[yellow]note:[/] study {spec.name!r} exists with a different spec; its trials are kept and the "
                "search goes on with the new one"
            )
        resume = previous if previous is not None and tracker.run_exists(previous) else None
        tags = {
            "sweeplab.role": "study",
            "sweeplab.study": spec.name,
            "sweeplab.storage": redacted(self.storage),
            **self._provenance,
        }
        params = {
            "sampler": spec.sampler.name,
            "pruner": spec.pruner.name,
            "n_trials": self.n_trials,
            "objective": ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives),
            "models": ", ".join(plan.key for plan in self.study.models),
            "seed": spec.trainer.seed,
            "max_epochs": spec.trainer.max_epochs,
            **self._data_record(),
        }
        parent = tracker.open_run(spec.name, tags, run_id=resume)
        if resume is None:
            optuna_study.set_user_attr(PARENT_RUN_ATTR, parent)  # first, so a failure below cannot orphan it
            # MLflow params are immutable once written: a resumed parent keeps the ones it was created with.
            tracker.log(parent, params=params)
            tracker.log_text(parent, self.study.text, "study.yaml")
            tracker.log_text(parent, self.study.resolved_yaml(), "study.resolved.yaml")
        optuna_study.set_user_attr(SPEC_HASH_ATTR, self._spec_hash())
        return parent

    # -- one trial -----------------------------------------------------------------------------------------
    def _objective(self, trial: optuna.Trial) -> float | list[float]:
        import optuna

        from sweeplab._callbacks import EpochCallback, GuardCallback, NonFiniteLoss, PruningCallback, StudyInterrupted
        from sweeplab._placement import MAX_ATTEMPTS, is_out_of_memory, release_device_memory, training_on
        from sweeplab.strategies import trial_trainer
        from sweeplab.tracking import MetricBuffer
        from sweeplab.tracking._lightning import BufferedMlflowLogger

        plan = self.study.sample(trial)
        trial.set_user_attr("architecture", plan.model_name)
        trial.set_user_attr("model", plan.model_key)
        self.progress.trial_started(trial.number, plan.model_key)
        metric = self.study.metrics[0]

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            value = metrics.get(metric)
            summary = f"{plan.model_key} epoch {epoch + 1}" + (f" {metric}={value:.4g}" if value is not None else "")
            self.progress.epoch(trial.number, epoch, summary)

        callbacks = [GuardCallback(self.interrupt.event), EpochCallback(on_epoch)]
        if len(self.study.metrics) == 1:
            callbacks.insert(0, PruningCallback(trial, metric))
        buffer: MetricBuffer | None = None
        try:
            # The strategy trains: plain train_trial, or with regularisation hyperparameters / self-tuning.
            train = trial_trainer(self.study, trial)
            device = self.placement.claim(trial, self.interrupt.event)
            workdir = self._workdir / f"trial-{trial.number}"
            for attempt in itertools.count(1):
                if self.interrupt.event.is_set():
                    raise StudyInterrupted()
                buffer = MetricBuffer(self.tracker, self._open_trial_run(trial, plan, attempt))
                try:
                    with training_on(device):
                        result = train(self.study, plan, self._data, BufferedMlflowLogger(buffer), callbacks, workdir)
                    break
                except Exception as error:
                    # Trials that wait count as others: one that has just freed its memory may be why this one ran out.
                    training, waiting = self.placement.others_on(trial, device) if is_out_of_memory(error) else (0, 0)
                    if not training + waiting or attempt == MAX_ATTEMPTS:  # not memory, or it does not fit alone
                        raise
                    where, others = self.placement.label(device), training + waiting
                    reason = f"out of memory on {where} beside {others} other trial(s), attempt {attempt}: {error}"
                # After the except block: the error's traceback no longer holds the attempt's tensors.
                self._close_run(buffer, "KILLED", {"sweeplab.state": "RETRIED", "sweeplab.reason": reason})
                buffer = None
                self.console.print(f"[yellow]trial {trial.number}:[/] {reason.split(': ')[0]}; waiting to train again")
                release_device_memory()
                if not self.placement.wait_for_room(trial, device, max(training, 1), self.interrupt.event):
                    raise StudyInterrupted()
            values = [result.metrics[m] for m in self.study.metrics]
            if not all(math.isfinite(v) for v in values):
                raise NonFiniteLoss(f"objective {self.study.metrics} = {values} is not finite")
        except optuna.TrialPruned as pruned:
            self._end_trial(trial, buffer, "FINISHED", "PRUNED", str(pruned))
            raise
        except Exception as error:
            self._end_trial(trial, buffer, "FAILED", "FAIL", f"{type(error).__name__}: {error}")
            raise
        except BaseException:
            # Our StudyInterrupted, a KeyboardInterrupt from a second Ctrl-C, or the SystemExit that Lightning's
            # own SIGTERM handling raises: the trial did not fail by itself, so it is queued to run again.
            self._end_trial(trial, buffer, "KILLED", "FAIL", "interrupted; queued to run again")
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            trial.study.enqueue_trial(trial.params, user_attrs={RETRY_OF_ATTR: trial.number})
            raise KeyboardInterrupt from None
        self._checkpoints[trial.number] = (result.checkpoint, plan)
        self._end_trial(trial, buffer, "FINISHED", "COMPLETE", "")
        return values[0] if len(values) == 1 else values

    def _open_trial_run(self, trial: optuna.Trial, plan: TrialPlan, attempt: int = 1) -> str:
        spec = self.study.spec
        tags = {
            "sweeplab.role": "trial",
            "sweeplab.study": spec.name,
            "sweeplab.trial": str(trial.number),
            "sweeplab.attempt": str(attempt),  # more than 1 after running out of memory beside other trials
            "sweeplab.architecture": plan.model_name,
            "sweeplab.model": plan.model_key,
            "sweeplab.state": "RUNNING",
            "sweeplab.worker": f"{platform.node()}:{os.getpid()}",  # which of a study's workers ran it
            **self._provenance,
        }
        params = {
            **plan.flat_params(),
            "seed": spec.trainer.seed,
            **self._data_record(),
            "optuna.trial": trial.number,
        }
        name = f"trial-{trial.number:03d}-{plan.model_key}"
        run_id = self.tracker.open_run(name, tags, parent_run_id=self.parent_run_id)
        trial.set_user_attr(RUN_ATTR, run_id)  # before anything else can fail, so the run can always be closed
        self.tracker.log(run_id, params=params)
        return run_id

    def _end_trial(
        self, trial: optuna.Trial, buffer: MetricBuffer | None, status: str, state: str, reason: str
    ) -> None:
        """Record the trial's outcome on its run; never raises, so the outcome reaches Optuna whatever MLflow does."""
        if reason:
            trial.set_user_attr(REASON_ATTR, reason[:5000])
        if buffer is None:
            return
        self._close_run(buffer, status, {"sweeplab.state": state} | ({"sweeplab.reason": reason} if reason else {}))

    def _close_run(self, buffer: MetricBuffer, status: str, tags: dict[str, str]) -> None:
        """Flush the run's metrics and end it; never raises (the tracking store may be down)."""
        tags = {key: value[:5000] for key, value in tags.items()}
        for write in (buffer.flush, lambda: self.tracker.end_run(buffer.run_id, status, tags)):
            try:
                write()
            except Exception as error:  # the tracking store is down: Optuna still records the state
                self.console.print(f"[yellow]warning:[/] MLflow run {buffer.run_id}: {error}")

    def _after_trial(self, optuna_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Runs after Optuna has recorded the trial's state: best so far, checkpoint, progress, budget."""
        from sweeplab._placement import release_device_memory

        best = best_trials(optuna_study)
        saved = self._checkpoints.pop(trial.number, None)
        overall = trial.number in [t.number for t in best]
        if saved is not None and (overall or _best_of_its_architecture(optuna_study, trial)):
            try:
                self._log_checkpoint(trial, *saved)  # each architecture's best is one download away (compare's CKA)
                if overall:
                    self._record_best(trial, best)
            except Exception as error:  # the study goes on; only this checkpoint is missing
                self.console.print(f"[yellow]warning:[/] could not record trial {trial.number}'s checkpoint: {error}")
        shutil.rmtree(self._workdir / f"trial-{trial.number}", ignore_errors=True)
        release_device_memory()  # for the trials of other processes on the same GPU
        finished = finished_trials(optuna_study.get_trials(deepcopy=False))
        self.progress.trial_finished(trial.number, finished, _trial_line(trial), _best_line(best))
        if self.interrupt.event.is_set() or (self.n_trials is not None and finished >= self.n_trials):
            optuna_study.stop()

    def _log_checkpoint(self, trial: optuna.trial.FrozenTrial, checkpoint: Path, plan: TrialPlan) -> None:
        """A new best trial, overall or of its architecture: its weights and how to rebuild the model go to its run."""
        description = checkpoint.parent / "model.json"
        rebuild = {"architecture": plan.model_name, "params": plan.model_params, "training": plan.training.model_dump()}
        description.write_text(json.dumps(rebuild, indent=2))
        run_id = trial.user_attrs[RUN_ATTR]
        self.tracker.log_artifact(run_id, checkpoint, "model")
        self.tracker.log_artifact(run_id, description, "model")

    def _record_best(self, trial: optuna.trial.FrozenTrial, best: list[optuna.trial.FrozenTrial]) -> None:
        """A new best trial (or a new member of the Pareto front): the parent records the best value so far, or the
        front of a multi-objective study."""
        run_id = trial.user_attrs[RUN_ATTR]
        if len(best) > 1 or len(self.study.metrics) > 1:
            front = ",".join(str(t.number) for t in best)
            self.tracker.log(self.parent_run_id, tags={"sweeplab.pareto_trials": front})
            return
        self.tracker.log(
            self.parent_run_id,
            metrics={f"best_{self.study.metrics[0]}": best[0].values[0]},
            tags={"sweeplab.best_trial": best[0].number, "sweeplab.best_run_id": run_id},
            step=trial.number,
        )

    # -- the study -----------------------------------------------------------------------------------------
    def run(self) -> StudyOutcome:
        with self.session() as optuna_study:
            already = finished_trials(optuna_study.get_trials(deepcopy=False))
            remaining = None if self.n_trials is None else max(self.n_trials - already, 0)
            self.interrupted = self.run_trials(optuna_study, remaining)
        outcome = self._outcome(optuna_study, self.interrupted)
        if self.interrupted:
            raise StudyInterruptedError(outcome)
        return outcome

    @contextlib.contextmanager
    def session(self) -> Iterator[optuna.Study]:
        """The study opened for trials: data loaded, Optuna study, parent run, progress display, interrupt
        handling. The parent run ends on exit, KILLED if the study was interrupted, unless another worker still
        runs a trial (then the last one out ends it)."""
        from optuna.trial import TrialState

        from sweeplab._placement import DevicePlacement
        from sweeplab._storage import study_lock
        from sweeplab._trial import quiet_lightning
        from sweeplab.tracking import Tracker

        spec = self.study.spec
        quiet_lightning()
        self._data = self._load_data()
        # The first of several workers creates the tables, the study, the experiment and the parent run; the
        # others wait here and load them (on a fresh database, simultaneous creation collides).
        with study_lock(self.storage, "setup"):
            self.tracker = Tracker(self.tracking_uri, spec.experiment_name)
            optuna_study = self._optuna_study()
            self._provenance = provenance_tags(self.study.source)
            self.parent_run_id = self._open_parent(optuna_study, self.tracker)
        self._checkpoints: dict[int, tuple[Path, TrialPlan]] = {}
        self.interrupted = False
        self._set_threads()
        self.placement = DevicePlacement(
            spec.trainer.accelerator, spec.trainer.devices, lock=lambda: study_lock(self.storage, "placement")
        )
        with (
            tempfile.TemporaryDirectory(prefix="sweeplab-") as workdir,
            StudyProgress(self.console, spec.name, self.n_trials, spec.trainer.max_epochs) as self.progress,
            self.interrupt.installed(),
        ):
            self._workdir = Path(workdir)
            self.progress.set_finished(finished_trials(optuna_study.get_trials(deepcopy=False)))
            yield optuna_study
        if not _in_flight(optuna_study, (TrialState.RUNNING,)):
            self._close_orphan_runs(optuna_study)
            self.tracker.end_run(self.parent_run_id, "KILLED" if self.interrupted else "FINISHED")

    def run_trials(self, optuna_study: optuna.Study, n: int | None) -> bool:
        """Run up to ``n`` more trials (None: until the budget or timeout); True when the study was interrupted.
        An unexpected error ends the parent run as FAILED before it propagates, so no run is left RUNNING."""
        from optuna.trial import TrialState

        from sweeplab._storage import BudgetReachedError, lost_connection

        if n == 0:
            return False
        budget = self.study.spec.budget
        heartbeat = self.study.spec.heartbeat
        outage_since = last_error = -math.inf
        try:
            while True:
                try:
                    optuna_study.optimize(
                        self._objective,
                        n_trials=n,
                        timeout=budget.timeout,
                        n_jobs=budget.n_jobs,
                        catch=(Exception,),
                        callbacks=[self._after_trial],
                    )
                    break
                except BudgetReachedError:
                    # The rest of the budget is in flight on other workers. Wait for them: a lost worker's trial
                    # comes back as a retry that this worker runs.
                    waiting = self.interrupt.event.wait(heartbeat.interval)
                    if waiting or not _in_flight(optuna_study, (TrialState.RUNNING, TrialState.WAITING)):
                        break
                except Exception as error:
                    cause = lost_connection(error)
                    if cause is None:
                        raise
                    # The database went away (a restart, the network): wait for it, then go on. A trial whose
                    # outcome could not be recorded stays RUNNING and is retried once its heartbeat is stale.
                    now = time.monotonic()
                    if now - last_error > 2 * heartbeat.interval:  # not a retry of the last one: a new outage
                        outage_since = now
                    last_error = now
                    if now - outage_since > heartbeat.grace:
                        raise
                    message = str(getattr(cause, "orig", cause)).strip()
                    self.console.print(f"[yellow]warning:[/] database unreachable, retrying: {message}")
                    if self.interrupt.event.wait(heartbeat.interval):
                        break
        except KeyboardInterrupt:
            return True
        except BaseException:
            self.tracker.end_run(self.parent_run_id, "FAILED")
            raise
        return self.interrupt.event.is_set()

    def _set_threads(self) -> None:
        import torch

        threads = self.study.spec.trainer.num_threads or max(1, (os.cpu_count() or 1) // self.study.spec.budget.n_jobs)
        torch.set_num_threads(threads)

    def _outcome(self, optuna_study: optuna.Study, interrupted: bool) -> StudyOutcome:
        best = best_trials(optuna_study)
        return StudyOutcome(
            study_name=optuna_study.study_name,
            storage=self.storage,
            tracking_uri=self.tracking_uri,
            parent_run_id=self.parent_run_id,
            finished=finished_trials(optuna_study.get_trials(deepcopy=False)),
            best_values=list(best[0].values) if best else None,
            best_trial=best[0].number if best else None,
            best_model=best[0].user_attrs.get("model") if best else None,
            pareto_trials=[t.number for t in best] if len(self.study.metrics) > 1 else [],
            interrupted=interrupted,
        )


def _best_of_its_architecture(optuna_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` beats every other complete trial of its architecture (``model`` key) on the first objective."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    if trial.state != TrialState.COMPLETE or not trial.values:
        return False
    sign = 1.0 if optuna_study.directions[0] == StudyDirection.MINIMIZE else -1.0
    model = trial.user_attrs.get("model")
    rivals = [
        t.values[0]
        for t in optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.number != trial.number and t.user_attrs.get("model") == model
    ]
    return all(sign * trial.values[0] < sign * value for value in rivals)


def _in_flight(optuna_study: optuna.Study, states: tuple[TrialState, ...]) -> bool:
    return bool(optuna_study.get_trials(deepcopy=False, states=states))


def _objective_text(values: Sequence[float] | None) -> str:
    return format_value(values[0] if values and len(values) == 1 else values)


def _trial_line(trial: optuna.trial.FrozenTrial) -> str:
    line = f"trial {trial.number:>3} {trial.state.name:<8} {trial.user_attrs.get('model', '?'):<12} "
    line += _objective_text(trial.values)
    reason = trial.user_attrs.get(REASON_ATTR, "")
    return line + (f"  [dim]{reason[:100]}[/]" if reason else "")  # only pruned and failed trials have one


def _best_line(best: list[optuna.trial.FrozenTrial]) -> str:
    if not best:
        return "best: -"
    return f"best {_objective_text(best[0].values)} ({best[0].user_attrs.get('model')}, trial {best[0].number})"


def run_study(
    study: Study,
    storage: str | None = None,
    tracking_uri: str | None = None,
    n_trials: int | None = None,
    console: Console | None = None,
) -> StudyOutcome:
    """Run (or resume) ``study`` until its budget of finished trials is reached."""
    return StudyRunner(study, storage, tracking_uri, n_trials, console).run()
