"""Lightning callbacks the runner puts on every trial: pruning, non-finite loss, interruption, progress."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import optuna
import pytorch_lightning as pl
import torch
from optuna.trial import TrialState

from sweeplab_modules.tasks.base import SweepTask


class StudyInterrupted(BaseException):
    """Raised inside a trial when the user interrupts the study (a BaseException, so no ``except Exception``
    in Lightning or user code swallows it)."""


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite: the trial cannot recover."""


class PruningCallback(pl.Callback):
    """Reports the objective to Optuna after each validation epoch and prunes when the pruner says so.

    Written for ``pytorch_lightning`` (optuna-integration's callback subclasses ``lightning.pytorch`` classes,
    which a ``pytorch_lightning.Trainer`` rejects). Only global rank 0 would report under DDP; the runner trains
    one process per trial. Optuna's step is the trial's epoch, counted on across its training stages (as MLflow's).
    """

    def __init__(
        self,
        trial: optuna.Trial,
        metric: str,
        write_values: Callable[[dict[int, float]], None] | None = None,
        write_interval: float = 2.0,
    ) -> None:
        self.trial = trial
        self.metric = metric
        # A trial that trains again after running out of memory reaches its epochs a second time: Optuna keeps the
        # first value reported for a step (and warns on the second), so the pruner judges those steps by them.
        self.reported: dict[int, float] = {}
        # Asking a pruner reads the study's trials from the storage: not where the answer is known without them,
        # for a pruner that never prunes, and in a median (percentile) pruner's warm-up epochs; a percentile
        # pruner decides on a recent read of the complete trials (RecentCompleteTrials).
        pruner = trial.study.pruner
        self.can_prune = not isinstance(pruner, optuna.pruners.NopPruner)
        percentile = isinstance(pruner, optuna.pruners.PercentilePruner)
        self.first_pruned_step = getattr(pruner, "_n_warmup_steps", 0) if percentile else 0
        self.complete_trials = RecentCompleteTrials(trial.study) if percentile else None
        # Neither of these pruners reads a running trial's values from the storage (others' decisions read
        # complete trials only): after the first (at once, so that the trial shows it trains), its values are
        # written together, at most every ``write_interval`` seconds and when the trial stops training, one
        # transaction each with ``write_values`` (a database storage's batch) instead of one per epoch.
        # Successive halving and Hyperband read them back at every decision.
        self.deferred = not self.can_prune or percentile
        # Only deferred values bypass ``trial.report``: its copy of the trial is what ``should_prune`` reads.
        self.write_values = write_values if self.deferred and write_values is not None else self._report_each
        self.write_interval = write_interval
        self._unwritten: dict[int, float] = {}
        self._written_at = -math.inf

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        # Optuna's step; messages count epochs from 1, as the progress display does
        epoch = trainer.current_epoch + (pl_module.epochs_before if isinstance(pl_module, SweepTask) else 0)
        value = float(trainer.callback_metrics[self.metric])
        if not math.isfinite(value):
            raise NonFiniteLoss(f"{self.metric} is not finite ({value}) at epoch {epoch + 1}")
        if epoch not in self.reported:
            self.reported[epoch] = self._unwritten[epoch] = value
            if not self.deferred or time.monotonic() - self._written_at >= self.write_interval:
                self.write_reports()
        if self.can_prune and epoch >= self.first_pruned_step and self._should_prune():
            self.write_reports()  # Optuna records a pruned trial's last reported value as its value
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1} with {self.metric}={value:.6g}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.write_reports()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # A failing or interrupted trial keeps its curve; the trial's own error is what it reports, so a storage
        # that fails here too (the database gone) adds nothing to it.
        with contextlib.suppress(Exception):
            self.write_reports()

    def write_reports(self) -> None:
        """Write the values reported since the last write."""
        if self._unwritten:
            self.write_values(self._unwritten)
            self._unwritten = {}
        self._written_at = time.monotonic()

    def _report_each(self, values: dict[int, float]) -> None:
        for step, value in values.items():
            self.trial.report(value, step=step)

    def _should_prune(self) -> bool:
        if self.complete_trials is None:
            return self.trial.should_prune()
        this_trial = optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values=self.reported)
        return self.trial.study.pruner.prune(self.complete_trials, this_trial)  # type: ignore[arg-type]


class RecentCompleteTrials:
    """The study as a percentile (median) pruner reads it, its direction and complete trials, with the complete
    trials read again only once the last read is ``max_age`` seconds old. A complete trial never changes, so a
    decision can only miss trials that completed in the last ``max_age`` seconds, as if taken that much earlier;
    reading every epoch cost ~13 ms, most of a trial's fixed cost in short epochs (BENCHMARKS.md)."""

    def __init__(self, study: optuna.Study, max_age: float = 2.0) -> None:
        self.study = study
        self.max_age = max_age
        self._trials: list[optuna.trial.FrozenTrial] = []
        self._read_at = -math.inf

    @property
    def direction(self) -> optuna.study.StudyDirection:
        return self.study.direction

    def get_trials(
        self, deepcopy: bool = False, states: tuple[TrialState, ...] | None = None
    ) -> list[optuna.trial.FrozenTrial]:
        if states != (TrialState.COMPLETE,):  # not what a percentile pruner asks for: read as asked
            return self.study.get_trials(deepcopy=deepcopy, states=states)
        if time.monotonic() - self._read_at >= self.max_age:
            self._trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            self._read_at = time.monotonic()
        return self._trials


class GuardCallback(pl.Callback):
    """Stops a trial when its loss is not finite, or when the study is being interrupted.

    Reading the loss waits for the device, so on an accelerator the check accumulates there and is read every
    ``check_every`` steps (default 32; 1 on the CPU, where reading costs nothing) and at the end of each epoch.
    """

    def __init__(self, interrupted: threading.Event, check_every: int | None = None) -> None:
        self.interrupted = interrupted
        self.check_every = check_every
        self._all_finite: torch.Tensor | None = None
        self._first_unchecked_batch = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._all_finite, self._first_unchecked_batch = None, 0  # a new attempt of the trial starts clean

    def _check_interrupt(self) -> None:
        if self.interrupted.is_set():
            raise StudyInterrupted()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._check_interrupt()

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._check_interrupt()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        every = self.check_every or (1 if loss.device.type == "cpu" else 32)
        if every == 1:  # one read instead of accumulating with three tensor operations per step
            if not math.isfinite(float(loss)):
                _raise_non_finite(trainer, batch_idx, batch_idx)
            return
        finite = loss.detach().isfinite()
        self._all_finite = finite if self._all_finite is None else self._all_finite & finite
        if (batch_idx + 1) % every == 0:
            self._check_accumulated(trainer, batch_idx)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_accumulated(trainer, None)

    def _check_accumulated(self, trainer: pl.Trainer, batch_idx: int | None) -> None:
        if self._all_finite is not None and not bool(self._all_finite):
            _raise_non_finite(trainer, self._first_unchecked_batch, "the last" if batch_idx is None else batch_idx)
        self._all_finite = None
        self._first_unchecked_batch = 0 if batch_idx is None else batch_idx + 1


def _raise_non_finite(trainer: pl.Trainer, first: int, last: int | str) -> NoReturn:
    where = f"batch {first}" if first == last else f"a batch from {first} to {last}"
    raise NonFiniteLoss(f"training loss is not finite at epoch {trainer.current_epoch + 1}, {where}")


class EpochCallback(pl.Callback):
    """Calls ``on_epoch(epoch, metrics)`` after each validation epoch (progress display), and within a long epoch
    ``on_batch(epoch, batches done, batches in the epoch)``: first once it has run ``quiet`` seconds, then at most
    every ``interval`` seconds (a short epoch shows no batch progress, and reporting costs nothing per batch)."""

    def __init__(
        self,
        on_epoch: Callable[[int, dict[str, float]], None],
        on_batch: Callable[[int, int, int], None] | None = None,
        quiet: float = 3.0,
        interval: float = 1.0,
    ) -> None:
        self.on_epoch = on_epoch
        self.on_batch = on_batch
        self.quiet = quiet
        self.interval = interval
        self._next_report = math.inf

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._next_report = time.monotonic() + self.quiet

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        if self.on_batch is None or now < self._next_report:
            return
        self._next_report = now + self.interval
        total = trainer.num_training_batches
        self.on_batch(trainer.current_epoch, batch_idx + 1, int(total) if math.isfinite(total) else 0)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            self.on_epoch(trainer.current_epoch, metrics)
