"""The runner's Lightning callbacks, on real Trainer runs of a tiny module."""

from __future__ import annotations

import contextlib
import math
import threading
import time

import pytest
import pytorch_lightning as pl
import torch
from conftest import bare_trainer

from sweeplab.data.datamodule import InMemoryBatches
from sweeplab.training._callbacks import GuardCallback, NonFiniteLoss, PruningCallback, StudyInterrupted


class DivergesAt(pl.LightningModule):
    """A regression whose loss is NaN from batch ``bad_batch`` of the first epoch on."""

    def __init__(self, bad_batch: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, 1)
        self.bad_batch = bad_batch
        self.steps_run = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.steps_run += 1
        x, y = batch
        loss = ((self.linear(x) - y) ** 2).mean()
        return loss * torch.nan if batch_idx >= self.bad_batch else loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit(module: pl.LightningModule, guard: GuardCallback, n_batches: int = 8) -> None:
    trainer = bare_trainer(callbacks=[guard])
    data = torch.zeros(n_batches, 1)
    trainer.fit(module, train_dataloaders=InMemoryBatches(data, data, batch_size=1, shuffle=False))


def test_guard_stops_at_the_first_non_finite_step_on_the_cpu() -> None:
    module = DivergesAt(bad_batch=2)
    with pytest.raises(NonFiniteLoss, match="epoch 1, batch 2"):
        _fit(module, GuardCallback(threading.Event()))
    assert module.steps_run == 3


class ConstantValidation(pl.LightningModule):
    """Logs ``val_loss`` = 1 after every epoch (nothing learns: the learning rate is 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return ((self.linear(batch[0]) - batch[1]) ** 2).mean()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", 1.0)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_the_prune_message_counts_epochs_from_1_as_the_display_does() -> None:
    import optuna

    # Pruned at the first step past the warm-up: Optuna's step 1 is the second epoch.
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.5, n_warmup_steps=1))
    trial = study.ask()
    data = torch.zeros(4, 1)
    batches = InMemoryBatches(data, data, batch_size=2, shuffle=False)
    trainer = bare_trainer(max_epochs=5, callbacks=[PruningCallback(trial, "val_loss")])
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 2 with val_loss=1"):
        trainer.fit(ConstantValidation(), train_dataloaders=batches, val_dataloaders=batches)
    assert trainer.current_epoch == 1  # the second epoch, counted from 0


def test_a_median_pruner_is_not_asked_in_its_warm_up_epochs_and_prunes_as_optuna_would() -> None:
    import optuna

    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=3))
    values = {step: 0.1 for step in range(5)}
    study.add_trial(optuna.trial.create_trial(value=0.1, intermediate_values=values))
    trial = study.ask()
    reads: list[object] = []
    get_trials = study.get_trials
    study.get_trials = lambda *args, **kwargs: reads.append(kwargs) or get_trials(*args, **kwargs)  # type: ignore[method-assign]
    data = torch.zeros(4, 1)
    batches = InMemoryBatches(data, data, batch_size=2, shuffle=False)
    trainer = bare_trainer(max_epochs=5, callbacks=[PruningCallback(trial, "val_loss")])
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 4"):  # Optuna's first step past the warm-up
        trainer.fit(ConstantValidation(), train_dataloaders=batches, val_dataloaders=batches)
    assert len(reads) == 1  # epochs 1-3 decided without reading the study
    assert sorted(study.trials[-1].intermediate_values) == [0, 1, 2, 3]  # every epoch still reported


def test_the_median_pruner_decides_on_recent_complete_trials_as_on_the_storage() -> None:
    import optuna
    from optuna.trial import TrialState

    from sweeplab.training._callbacks import RecentCompleteTrials

    pruner = optuna.pruners.MedianPruner(n_startup_trials=2)
    study = optuna.create_study(pruner=pruner)
    for final in (0.2, 0.4, 0.6):
        curve = {step: final + 0.1 * (5 - step) for step in range(6)}
        study.add_trial(optuna.trial.create_trial(value=final, intermediate_values=curve))
    trial = study.ask()
    recent = RecentCompleteTrials(study, max_age=0.3)
    reported: dict[int, float] = {}
    for step, value in enumerate([0.9, 0.75, 0.62, 0.45, 0.62, 0.7]):  # above and below the median by turns
        trial.report(value, step)
        reported[step] = value
        this_trial = optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values=reported)
        assert pruner.prune(recent, this_trial) == trial.should_prune(), step
    # A trial that completes after a read is seen once the read is max_age old.
    study.add_trial(optuna.trial.create_trial(value=0.1, intermediate_values={0: 0.1}))
    assert len(recent.get_trials(states=(TrialState.COMPLETE,))) == 3
    time.sleep(0.35)
    assert len(recent.get_trials(states=(TrialState.COMPLETE,))) == 4


class ValidationCurve(ConstantValidation):
    """Logs ``val_loss`` = ``curve[epoch]``."""

    def __init__(self, curve: list[float]) -> None:
        super().__init__()
        self.curve = curve

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", self.curve[self.current_epoch])


def _writes_of_a_fit(
    pruner: object, curve: list[float], write_interval: float, complete: list[object] = ()
) -> tuple[list[dict], object]:
    """The batches of values a PruningCallback writes straight to the storage (as the runner's batch does) over a
    fit of up to ``len(curve)`` epochs in a study of the ``complete`` trials; and the trial afterwards."""
    import optuna

    study = optuna.create_study(pruner=pruner)  # type: ignore[arg-type]
    study.add_trials(complete)  # type: ignore[arg-type]
    trial = study.ask()
    writes: list[dict[int, float]] = []

    def write(values: dict[int, float]) -> None:
        writes.append(dict(values))
        for step, value in values.items():
            study._storage.set_trial_intermediate_value(trial._trial_id, step, value)

    data = torch.zeros(4, 1)
    batches = InMemoryBatches(data, data, batch_size=2, shuffle=False)
    callback = PruningCallback(trial, "val_loss", write, write_interval)
    with contextlib.suppress(NonFiniteLoss, optuna.TrialPruned):
        bare_trainer(max_epochs=len(curve), callbacks=[callback]).fit(
            ValidationCurve(curve), train_dataloaders=batches, val_dataloaders=batches
        )
    return writes, study._storage.get_trial(trial._trial_id)


def test_values_no_running_trial_reads_are_written_together_at_most_every_interval() -> None:
    import optuna

    curve = [0.5, 0.375, 0.25, 0.125, 0.0625]  # exact in float32, as Lightning logs them
    steps = dict(enumerate(curve))
    for pruner in (optuna.pruners.NopPruner(), optuna.pruners.MedianPruner()):
        writes, trial = _writes_of_a_fit(pruner, curve, write_interval=3600)
        assert writes == [{0: 0.5}, {1: 0.375, 2: 0.25, 3: 0.125, 4: 0.0625}]  # the first at once; then at the end
        assert trial.intermediate_values == steps
        writes, _ = _writes_of_a_fit(pruner, curve, write_interval=0)
        assert writes == [{step: value} for step, value in steps.items()]


def test_a_pruned_trials_values_are_written_before_optuna_records_it() -> None:
    import optuna

    better = optuna.trial.create_trial(value=0.01, intermediate_values={step: 0.01 for step in range(5)})
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1)
    writes, trial = _writes_of_a_fit(pruner, [0.5, 0.375, 0.25], write_interval=3600, complete=[better])
    assert writes == [{0: 0.5}]  # pruned at its first epoch: Optuna takes its last value from the storage
    assert trial.intermediate_values == {0: 0.5}


def test_a_pruner_that_reads_the_running_trial_gets_each_value_through_optuna_and_prunes() -> None:
    import optuna

    # Successive halving's first rung (at step min_resource = 1) keeps the best half: three trials reached it
    # with 0.1.
    rung = [
        optuna.trial.create_trial(value=0.1, intermediate_values={0: 0.1}, system_attrs={"completed_rung_0": 0.1})
        for _ in range(3)
    ]
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    writes, trial = _writes_of_a_fit(pruner, [0.5, 0.375, 0.25], write_interval=3600, complete=rung)
    assert writes == []  # trial.report, whose copy of the trial the pruner reads
    assert trial.intermediate_values == {0: 0.5, 1: 0.375}  # pruned at its first rung
    writes, trial = _writes_of_a_fit(pruner, [0.5, 0.375, 0.25], write_interval=3600)
    assert trial.intermediate_values == {0: 0.5, 1: 0.375, 2: 0.25}  # alone in the study: not pruned


def test_a_failing_trial_keeps_the_values_reported_before_its_failure() -> None:
    import optuna

    writes, trial = _writes_of_a_fit(optuna.pruners.NopPruner(), [0.5, 0.25, math.nan, 0.125], write_interval=3600)
    assert writes == [{0: 0.5}, {1: 0.25}]  # the second when the non-finite value stopped the fit
    assert trial.intermediate_values == {0: 0.5, 1: 0.25}


def test_guard_reads_the_accumulated_check_every_k_steps() -> None:
    # What happens on an accelerator, where reading the loss each step would wait for the device.
    module = DivergesAt(bad_batch=1)
    with pytest.raises(NonFiniteLoss, match="epoch 1, a batch from 0 to 3"):
        _fit(module, GuardCallback(threading.Event(), check_every=4))
    assert module.steps_run == 4


def test_guard_checks_the_remainder_at_the_end_of_the_epoch() -> None:
    module = DivergesAt(bad_batch=5)  # batches 4..5 are never reached by a check every 4 steps of 6
    with pytest.raises(NonFiniteLoss, match="epoch 1, a batch from 4 to the last"):
        _fit(module, GuardCallback(threading.Event(), check_every=4), n_batches=6)
    assert module.steps_run == 6


def test_guard_raises_study_interrupted_before_the_next_batch() -> None:
    interrupted = threading.Event()
    interrupted.set()
    module = DivergesAt(bad_batch=100)
    with pytest.raises(StudyInterrupted):
        _fit(module, GuardCallback(interrupted))
    assert module.steps_run == 0


def test_batch_progress_is_reported_within_long_epochs_only() -> None:
    from sweeplab.training._callbacks import EpochCallback

    reported: list[tuple[int, int, int]] = []
    data = torch.zeros(6, 1)
    batches = InMemoryBatches(data, data, batch_size=2, shuffle=False)
    # No quiet time: every batch reports (what an epoch longer than the quiet time sees after it).
    eager = EpochCallback(lambda epoch, metrics: None, lambda *done: reported.append(done), quiet=0, interval=0)
    bare_trainer(callbacks=[eager]).fit(ConstantValidation(), train_dataloaders=batches)
    assert reported == [(epoch, done, 3) for epoch in (0, 1) for done in (1, 2, 3)]
    # A short epoch (shorter than the quiet time) reports nothing.
    reported.clear()
    quiet = EpochCallback(lambda epoch, metrics: None, lambda *done: reported.append(done), quiet=60)
    bare_trainer(callbacks=[quiet]).fit(ConstantValidation(), train_dataloaders=batches)
    assert reported == []
