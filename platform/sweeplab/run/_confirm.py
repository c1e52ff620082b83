"""The confirmation stage: after the search, each architecture's best configuration trained again from the study's
confirmation seeds (the same seeds for every architecture: paired) and tested.

A search picks its winner on one validation value of one seed; the confirmation gives each architecture's best a
distribution over seeds on the test split, which ``sweeplab compare`` turns into intervals and paired tests.
Confirmation runs are child runs of the study (``CONFIRM_ROLE``), not Optuna trials: the samplers never see them
and the budget (``finished_trials``) never counts them. A resumed study skips the (trial, seed) pairs whose run
finished. Seeds go in the outer loop, so a stage cut short leaves complete pairs for the seeds it reached.
``run_stage`` trains such after-search runs for this stage and the transfer stage (``_transfer.py``).
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sweeplab.record import MODEL_ATTR, REASON_TAG, STATE_TAG

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from sweeplab.run._session import StudyRunner
    from sweeplab.spec import Study, TrialPlan
    from sweeplab.tracking import TrackedRun


def best_of_each_architecture(optuna_study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    """Each architecture's (``model`` key's) best complete trial on the first objective, in the study's order of
    architectures; a tie goes to the earlier trial."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    sign = 1.0 if optuna_study.directions[0] == StudyDirection.MINIMIZE else -1.0
    best: dict[str, optuna.trial.FrozenTrial] = {}
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = trial.user_attrs.get(MODEL_ATTR)
        if key is None or not trial.values:
            continue
        if key not in best or sign * trial.values[0] < sign * best[key].values[0]:
            best[key] = trial
    return best


@dataclass(frozen=True)
class StageRun:
    """One run of a stage after the search: a best trial's configuration trained as ``plan`` under ``study``."""

    study: Study
    plan: TrialPlan
    description: str
    open_run: Callable[[], TrackedRun]
    workdir: str


def run_stage(
    runner: StudyRunner,
    optuna_study: optuna.Study,
    lock: str,
    runs: Callable[[dict[str, FrozenTrial]], Iterable[StageRun]],
) -> bool:
    """Train ``runs(best of each architecture)`` as child runs of the study; True when the study was interrupted
    meanwhile. Runs when the search is over and no other worker still runs a trial (the last worker out trains
    them); workers that finish together take turns under the ``lock``, so each run trains once (``runs`` leaves
    out those that finished)."""
    from sweeplab.run._storage import study_lock
    from sweeplab.strategies import trial_trainer
    from sweeplab.training import TrialContext
    from sweeplab.training._callbacks import GuardCallback

    with study_lock(runner.storage, lock):
        if _trials_in_flight(optuna_study):
            return False
        guard = GuardCallback(runner.interrupt.event)
        for stage_run in runs(best_of_each_architecture(optuna_study)):
            if runner.interrupt.event.is_set():
                return True
            runner.console.print(stage_run.description)
            run = stage_run.open_run()
            workdir = runner._workdir / stage_run.workdir
            try:
                context = TrialContext(stage_run.study, stage_run.plan, runner._data, run, workdir, (guard,), None)
                trial_trainer(stage_run.study)(context)
            except Exception as error:  # one failed run leaves its place empty, not the study failed
                reason = f"{type(error).__name__}: {error}"
                runner.recorder.close_run(run, "FAILED", {STATE_TAG: "FAIL", REASON_TAG: reason})
                runner.console.print(f"[yellow]{stage_run.description} failed:[/] {reason}")
                continue
            except BaseException:  # our StudyInterrupted, a second Ctrl-C, Lightning's SystemExit on SIGTERM
                runner.recorder.close_run(run, "KILLED", {STATE_TAG: "FAIL", REASON_TAG: "interrupted"})
                return True
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            runner.recorder.close_run(run, "FINISHED", {STATE_TAG: "COMPLETE"})
    return runner.interrupt.event.is_set()


def run_confirmation(runner: StudyRunner, optuna_study: optuna.Study) -> bool:
    """Train the confirmation runs that have not finished yet; True when the study was interrupted meanwhile."""
    from optuna.trial import FixedTrial

    study = runner.study

    def runs(best: dict[str, FrozenTrial]) -> Iterable[StageRun]:
        done = runner.recorder.finished_confirmations()
        for seed in study.confirm_seeds:
            seeded = study.with_seed(seed)
            for key, trial in best.items():
                if (trial.number, seed) not in done:
                    plan = study.sample(FixedTrial(trial.params, trial.number))
                    yield StageRun(
                        seeded,
                        plan,
                        f"confirming {key} (trial {trial.number}) with seed {seed}",
                        functools.partial(runner.recorder.open_confirm_run, plan, trial.number, seed),
                        f"confirm-{trial.number}-{seed}",
                    )

    return run_stage(runner, optuna_study, "confirm", runs)


def _trials_in_flight(optuna_study: optuna.Study) -> bool:
    from optuna.trial import TrialState

    return bool(optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
