"""Run a study: Optuna samples, Lightning trains, MLflow records; interrupts end cleanly and resume.

``StudyRunner`` orchestrates; the pieces are the engine's other modules: the shared storage and its budget
(``_storage``), lost workers' trials (``_recovery``), GPU placement (``_placement``) and the out-of-memory retries
(``_retry``), the MLflow records (``_recording``), interrupts (``_signals``) and the progress display (``_display``).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from sweeplab._cpus import TrialThreads
from sweeplab._provenance import provenance_tags, redacted
from sweeplab._stores import OutageWait, StoreUnavailableError, check_store, lost_connection
from sweeplab.record import (
    ARCHITECTURE_ATTR,
    INTERRUPTED_ATTR,
    MODEL_ATTR,
    REASON_TAG,
    RETRY_OF_ATTR,
    RUN_ATTR,
    STATE_TAG,
    best_trials,
    finished_trials,
)
from sweeplab.run._display import StudyProgress, best_line, trial_line
from sweeplab.run._signals import InterruptSignal, interrupts_held
from sweeplab.spec import MODEL_PARAM, Study, TrialPlan

if TYPE_CHECKING:
    import optuna
    from optuna.trial import TrialState

    from sweeplab.data import OperatorData
    from sweeplab.tracking import TrackedRun
    from sweeplab.training import TrialResult


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
    best_run_id: str | None = None
    """The MLflow run of the best trial (of the first on the Pareto front): its metrics, model and checkpoint."""
    run_ids: dict[int, str] = field(default_factory=dict)
    """Every trial's MLflow run (its latest attempt), by trial number."""


class StudyInterruptedError(KeyboardInterrupt):
    """The study was interrupted; its state is saved and running the same command resumes it."""

    def __init__(self, outcome: StudyOutcome) -> None:
        super().__init__("study interrupted")
        self.outcome = outcome


@dataclass(frozen=True)
class _CompletedTrial:
    """A trial that trained to the end, until Optuna has recorded it: its run stays open for its checkpoint."""

    run: TrackedRun
    checkpoint: Path
    plan: TrialPlan


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
        self.interrupt = InterruptSignal()
        # One clock for the outages of both stores (they often share a server): a worker past the limit on one
        # does not wait again on the other on its way out.
        self.outage = OutageWait(
            study.spec.heartbeat.outage_limit,
            lambda message: self.console.print(f"[yellow]warning:[/] {message}"),
            self.interrupt.event,
        )
        self._unavailable: StoreUnavailableError | None = None

    @property
    def parent_run_id(self) -> str:
        return self.recorder.parent_run_id

    # -- setup ---------------------------------------------------------------------------------------------
    def _load_data(self) -> OperatorData:
        from sweeplab.data import load_dataset
        from sweeplab.datagen.solvers import direction_model_loader
        from sweeplab.serving import load_model

        spec = self.study.spec.data
        # A data set solved by a trained model (solver dcdm) names it by URI in this study's store.
        with direction_model_loader(partial(load_model, tracking_uri=self.tracking_uri)):
            return load_dataset(spec.name, self.study.data_params, data_dir=spec.dir)

    def _optuna_study(self) -> optuna.Study:
        import optuna

        from sweeplab.run._recovery import StaleTrialRecovery
        from sweeplab.run._storage import open_storage
        from sweeplab.search import build_pruner, build_sampler

        spec = self.study.spec
        # Optuna would log each failed trial with its traceback; the progress display gives the reason instead.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        heartbeat = spec.heartbeat
        recovery = StaleTrialRecovery(self.recorder.close_lost_run, heartbeat.max_retry, heartbeat.grace)
        self._trial_storage = open_storage(self.storage, heartbeat, self.n_trials, recovery)
        study = optuna.create_study(
            study_name=spec.name,
            storage=self._trial_storage,
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

    # -- one trial -----------------------------------------------------------------------------------------
    def _objective(self, trial: optuna.Trial) -> float | list[float]:
        import optuna
        import torch

        from sweeplab.run._retry import train_until_it_fits
        from sweeplab.strategies import trial_trainer
        from sweeplab.training import TrialContext
        from sweeplab.training._callbacks import EpochCallback, GuardCallback, NonFiniteLoss, PruningCallback

        self.outage.recovered()  # the database just gave this trial out
        torch.set_num_threads(self.threads.for_next_trial())
        self._mine[trial.number] = trial._trial_id
        metric = self.study.metrics[0]

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            value = metrics.get(metric)
            summary = f"{plan.model_key} epoch {epoch + 1}" + (f" {metric}={value:.4g}" if value is not None else "")
            self.progress.epoch(trial.number, epoch, summary)

        def on_batch(epoch: int, done: int, total: int) -> None:
            self.progress.batch(trial.number, epoch, done, total, plan.model_key)

        callbacks = [GuardCallback(self.interrupt.event), EpochCallback(on_epoch, on_batch)]
        if len(self.study.metrics) == 1:
            write_values = partial(self._trial_storage.set_trial_intermediate_values, trial._trial_id)
            callbacks.insert(0, PruningCallback(trial, metric, write_values))
        # The strategy trains: plain train_trial, or with regularisation hyperparameters / self-tuning.
        train = trial_trainer(self.study)
        workdir = self._workdir / f"trial-{trial.number}"
        run: TrackedRun | None = None

        def attempt(number: int) -> TrialResult:
            nonlocal run
            run = self.recorder.open_trial_run(trial, plan, number)
            return train(TrialContext(self.study, plan, self._data, run, workdir, tuple(callbacks), trial))

        def retried(reason: str) -> None:
            nonlocal run
            assert run is not None
            self.recorder.close_run(run, "KILLED", {STATE_TAG: "RETRIED", REASON_TAG: reason})
            run = None
            self.console.print(f"[yellow]trial {trial.number}:[/] {reason.split(': ')[0]}; waiting to train again")

        try:  # sampling too: a value Optuna rejects fails the trial with its reason recorded
            plan = self.study.sample(trial)
            trial.set_user_attr(ARCHITECTURE_ATTR, plan.model_name)
            trial.set_user_attr(MODEL_ATTR, plan.model_key)
            self.progress.trial_started(trial.number, plan.model_key)
            device = self.placement.claim(trial, self.interrupt.event)
            result = train_until_it_fits(attempt, retried, trial, device, self.placement, self.interrupt.event)
            values = [result.metrics[m] for m in self.study.metrics]
            if not all(math.isfinite(v) for v in values):
                raise NonFiniteLoss(f"objective {self.study.metrics} = {values} is not finite")
        except optuna.TrialPruned as pruned:
            self.recorder.end_trial(trial, run, "FINISHED", "PRUNED", str(pruned))
            raise
        except StoreUnavailableError as error:
            # The tracking store stayed away past the outage limit: the trial did not fail by itself. It is
            # queued again as an interrupted one is, and the worker stops (``run_trials`` raises the error).
            self._unavailable = error
            self._requeue(trial, run, f"interrupted: {error}")
            raise KeyboardInterrupt from None
        except Exception as error:
            if lost_connection(error) is None:
                self.recorder.end_trial(trial, run, "FAILED", "FAIL", f"{type(error).__name__}: {error}")
                raise
            # A store went away mid-trial: not the trial's failure. Once the database is back the trial is queued
            # again, unless a worker has failed it as lost meanwhile (and queued it itself); either way the retry
            # counts, not this trial.
            self._wait_for_database(trial, error)
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                self._requeue(trial, run, "a store went away during the trial; queued to run again")
            raise
        except BaseException:
            # Our StudyInterrupted, a KeyboardInterrupt from a second Ctrl-C, or the SystemExit that Lightning's
            # own SIGTERM handling raises: the trial did not fail by itself, so it is queued to run again.
            self._requeue(trial, run, "interrupted; queued to run again")
            raise KeyboardInterrupt from None
        # The run stays open until Optuna has recorded the trial: then it is known whether its model is a best
        # one, whose checkpoint goes to the run before it ends (``_after_trial``).
        assert run is not None
        self.recorder.flush(run)
        self._completed[trial.number] = _CompletedTrial(run, result.checkpoint, plan)
        return values[0] if len(values) == 1 else values

    def _requeue(self, trial: optuna.Trial, run: TrackedRun | None, reason: str) -> None:
        """End a trial that did not fail by itself: its run KILLED, its parameters queued to run again."""
        self.recorder.end_trial(trial, run, "KILLED", "FAIL", reason)
        trial.set_user_attr(INTERRUPTED_ATTR, True)
        trial.study.enqueue_trial(trial.params, user_attrs={RETRY_OF_ATTR: trial.number})

    def _wait_for_database(self, trial: optuna.Trial, error: Exception) -> None:
        """Wait until the study's database answers again after ``error``; StoreUnavailableError past the outage
        limit, KeyboardInterrupt if interrupted meanwhile."""
        from optuna.trial import TrialState

        while not self.outage.pause(f"study storage {redacted(self.storage)}", error):
            try:
                trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                return
            except Exception as again:
                if lost_connection(again) is None:
                    raise
                error = again
        raise KeyboardInterrupt

    def _after_trial(self, optuna_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Runs after Optuna has recorded the trial's state: best so far, checkpoint, the run's end, progress,
        budget."""
        from optuna.trial import TrialState

        from sweeplab.run._placement import release_device_memory

        self._mine.pop(trial.number, None)
        trials = optuna_study.get_trials(deepcopy=False)  # one read of the storage serves what follows
        best = best_trials(optuna_study, trials)
        completed = self._completed.pop(trial.number, None)
        if completed is not None:
            overall = trial.number in [t.number for t in best]
            try:
                of_architecture = _best_of_its_architecture(optuna_study, trial, trials)
                if overall or of_architecture:
                    # Each architecture's best is one download away (compare's CKA) and in the Model Registry.
                    aliases = self.recorder.aliases_for(completed.plan, overall, of_architecture)
                    self.recorder.log_best_model(completed.run, completed.checkpoint, completed.plan, trial, aliases)
            except Exception as error:  # the study goes on; only this checkpoint is missing
                self.console.print(f"[yellow]warning:[/] could not record trial {trial.number}'s checkpoint: {error}")
            status = "FAILED" if trial.state == TrialState.FAIL else "FINISHED"
            self.recorder.close_run(completed.run, status, {STATE_TAG: trial.state.name})
        if best:  # one point per finished trial on the parent: the best so far
            self.recorder.record_best(trial, best)
        shutil.rmtree(self._workdir / f"trial-{trial.number}", ignore_errors=True)
        release_device_memory()  # for the trials of other processes on the same GPU
        finished = finished_trials(trials)
        self.progress.trial_finished(trial.number, finished, trial_line(trial), best_line(best))
        if self.interrupt.event.is_set() or (self.n_trials is not None and finished >= self.n_trials):
            optuna_study.stop()

    # -- the study -----------------------------------------------------------------------------------------
    def run(self) -> StudyOutcome:
        with self.session() as optuna_study:
            already = finished_trials(optuna_study.get_trials(deepcopy=False))
            remaining = None if self.n_trials is None else max(self.n_trials - already, 0)
            self.interrupted = self.run_trials(optuna_study, remaining)
            if not self.interrupted and self.study.spec.strategy == "transfer":
                from sweeplab.run._transfer import run_transfer

                self.interrupted = run_transfer(self, optuna_study)
            if not self.interrupted and self.study.spec.confirm is not None:
                from sweeplab.run._confirm import run_confirmation

                self.interrupted = run_confirmation(self, optuna_study)
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

        from sweeplab.run._placement import DevicePlacement
        from sweeplab.run._recording import StudyRecorder
        from sweeplab.run._storage import study_lock
        from sweeplab.tracking import Tracker
        from sweeplab.training import quiet_lightning

        spec = self.study.spec
        # A store that cannot be reached or written is named now, in seconds, before any data is generated.
        check_store(self.storage, "study storage")
        check_store(self.tracking_uri, "MLflow tracking store")
        # Created before the data are loaded, so that by the first trial it has seen how busy the machine is.
        self.threads = TrialThreads(spec.trainer.num_threads, spec.budget.n_jobs)
        with interrupts_held():  # the import of torch and Lightning
            quiet_lightning()
        self._data = self._load_data()
        # The first of several workers creates the tables, the study, the experiment and the parent run; the
        # others wait here and load them (on a fresh database, simultaneous creation collides).
        with study_lock(self.storage, "setup"):
            tracker = Tracker(self.tracking_uri, spec.experiment_name, self.outage)
            provenance = provenance_tags(self.study.source)
            self.recorder = StudyRecorder(
                self.study, tracker, self.storage, provenance, self._data.identity, self.console, self._data
            )
            optuna_study = self._optuna_study()
            self.recorder.open_parent(optuna_study, self.n_trials)
        self._completed: dict[int, _CompletedTrial] = {}
        self._mine: dict[int, int] = {}  # number -> id of the trials this worker runs, until Optuna records them
        self.interrupted = False
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
            self.recorder.close_orphan_runs(optuna_study)
            self.recorder.end_parent("KILLED" if self.interrupted else "FINISHED")

    def run_trials(self, optuna_study: optuna.Study, n: int | None) -> bool:
        """Run up to ``n`` more trials (None: until the budget or timeout); True when the study was interrupted.
        An outage of the database is waited out up to ``heartbeat.outage_limit`` (then StoreUnavailableError).
        An unexpected error ends the parent run as FAILED before it propagates, so no run is left RUNNING."""
        if n == 0:
            return False
        try:
            self._optimize(optuna_study, n)
        except KeyboardInterrupt:
            if self._unavailable is None:
                return True
            self.recorder.end_parent("FAILED")
            raise self._unavailable from None
        except BaseException:
            self.recorder.end_parent("FAILED")
            raise
        return self.interrupt.event.is_set()

    def _optimize(self, optuna_study: optuna.Study, n: int | None) -> None:
        from optuna.trial import TrialState

        from sweeplab.run._budget import BudgetReachedError

        budget = self.study.spec.budget
        heartbeat = self.study.spec.heartbeat
        while True:
            try:
                try:
                    optuna_study.optimize(
                        self._objective,
                        n_trials=n,
                        timeout=budget.timeout,
                        n_jobs=budget.n_jobs,
                        catch=(Exception,),
                        callbacks=[self._after_trial],
                    )
                    return
                except BudgetReachedError:
                    # The rest of the budget is in flight on other workers. Wait for them: a lost worker's trial
                    # comes back as a retry that this worker runs.
                    waiting = self.interrupt.event.wait(heartbeat.interval)
                    if waiting or not _in_flight(optuna_study, (TrialState.RUNNING, TrialState.WAITING)):
                        return
            except Exception as error:
                if lost_connection(error) is None:
                    if self._taken_over(optuna_study):
                        continue
                    raise
                # The database went away (a restart, the network): wait for it, then go on. A trial whose
                # outcome could not be recorded stays RUNNING and is retried once its heartbeat is stale.
                if self.outage.pause(f"study storage {redacted(self.storage)}", error):
                    return

    def _taken_over(self, optuna_study: optuna.Study) -> bool:
        """Whether trials of this worker were failed as lost by a worker (this one included) while the database
        was away longer than the grace: Optuna then refuses their outcome, and their retries run instead. Their
        runs end KILLED."""
        storage = optuna_study._storage
        taken = [n for n, trial_id in self._mine.items() if storage.get_trial(trial_id).state.is_finished()]
        for number in taken:
            del self._mine[number]
            completed = self._completed.pop(number, None)
            reason = "failed as lost while the database was away; its retry runs instead"
            if completed is not None:
                self.recorder.close_run(completed.run, "KILLED", {STATE_TAG: "FAIL", REASON_TAG: reason})
            self.console.print(f"[yellow]warning:[/] trial {number} {reason}")
        return bool(taken)

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
            best_model=best[0].user_attrs.get(MODEL_ATTR) if best else None,
            pareto_trials=[t.number for t in best] if len(self.study.metrics) > 1 else [],
            interrupted=interrupted,
            best_run_id=best[0].user_attrs.get(RUN_ATTR) if best else None,
            run_ids={
                trial.number: trial.user_attrs[RUN_ATTR]
                for trial in optuna_study.get_trials(deepcopy=False)
                if RUN_ATTR in trial.user_attrs
            },
        )


def _best_of_its_architecture(
    optuna_study: optuna.Study, trial: optuna.trial.FrozenTrial, trials: list[optuna.trial.FrozenTrial]
) -> bool:
    """Whether ``trial`` beats every other complete trial of its architecture (``model`` key) among ``trials`` on
    the first objective."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    if trial.state != TrialState.COMPLETE or not trial.values:
        return False
    sign = 1.0 if optuna_study.directions[0] == StudyDirection.MINIMIZE else -1.0
    model = trial.user_attrs.get(MODEL_ATTR)
    rivals = [
        t.values[0]
        for t in trials
        if t.state == TrialState.COMPLETE and t.number != trial.number and t.user_attrs.get(MODEL_ATTR) == model
    ]
    return all(sign * trial.values[0] < sign * value for value in rivals)


def _in_flight(optuna_study: optuna.Study, states: tuple[TrialState, ...]) -> bool:
    return bool(optuna_study.get_trials(deepcopy=False, states=states))


def run_study(
    study: Study | str | Path | Mapping[str, Any],
    storage: str | None = None,
    tracking_uri: str | None = None,
    n_trials: int | None = None,
    console: Console | None = None,
) -> StudyOutcome:
    """Run (or resume) ``study`` until its budget of finished trials is reached.

    ``study`` is a loaded ``Study``, the path of a study YAML file, or a dict with the same keys (from a
    notebook); a file or dict is checked first (``StudyError`` naming the field of every problem). ``storage``,
    ``tracking_uri`` and ``n_trials`` override the study's.
    """
    from sweeplab.spec import load_study

    if not isinstance(study, Study):
        study = load_study(study)
    return StudyRunner(study, storage, tracking_uri, n_trials, console).run()
