"""Lightning callbacks the runner puts on every trial: pruning, non-finite loss, interruption, progress."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import optuna
import pytorch_lightning as pl


class StudyInterrupted(BaseException):
    """Raised inside a trial when the user interrupts the study (a BaseException, so no ``except Exception``
    in Lightning or user code swallows it)."""


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite: the trial cannot recover."""


class PruningCallback(pl.Callback):
    """Reports the objective to Optuna after each validation epoch and prunes when the pruner says so.

    Written for ``pytorch_lightning`` (optuna-integration's callback subclasses ``lightning.pytorch`` classes,
    which a ``pytorch_lightning.Trainer`` rejects). Only global rank 0 would report under DDP; the runner trains
    one process per trial.
    """

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        # Asking a pruner that never prunes still reads every trial of the study from the storage, each epoch.
        self.can_prune = not isinstance(trial.study.pruner, optuna.pruners.NopPruner)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        epoch = trainer.current_epoch
        value = float(trainer.callback_metrics[self.metric])
        if not math.isfinite(value):
            raise NonFiniteLoss(f"{self.metric} is not finite ({value}) at epoch {epoch}")
        self.trial.report(value, step=epoch)
        if self.can_prune and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} with {self.metric}={value:.6g}")


class GuardCallback(pl.Callback):
    """Stops a trial at once when its loss is not finite, or when the study is being interrupted."""

    def __init__(self, interrupted: threading.Event) -> None:
        self.interrupted = interrupted

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
        if loss is not None and not bool(loss.isfinite()):
            raise NonFiniteLoss(
                f"training loss is not finite ({float(loss)}) at epoch {trainer.current_epoch}, batch {batch_idx}"
            )


class EpochCallback(pl.Callback):
    """Calls ``on_epoch(epoch, metrics)`` after each validation epoch (progress display)."""

    def __init__(self, on_epoch: Callable[[int, dict[str, float]], None]) -> None:
        self.on_epoch = on_epoch

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            self.on_epoch(trainer.current_epoch, metrics)
