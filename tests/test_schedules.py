"""Cosine power annealing (sharpDARTS): the schedule against the paper's formula, in a real training run, and as
searchable study fields."""

from __future__ import annotations

import math

import optuna
import pytest
from conftest import TINY_STUDY

from sweeplab.spec import StudyError, parse_study
from sweeplab_modules.schedules import cosine_power_factor


def _sharpdarts(epochs: int, power: float, max_lr: float, min_lr: float) -> list[float]:
    """The schedule as the sharpDARTS authors describe computing it: p^(c + 1) over t = 0 .. T, rescaled so that
    its largest value is max_lr and its smallest min_lr (c itself for p = 1)."""
    proportions = [(1 + math.cos(math.pi * t / epochs)) / 2 for t in range(epochs + 1)]
    curve = proportions if power == 1 else [power ** (c + 1) for c in proportions]
    low, high = min(curve), max(curve)
    return [min_lr + (max_lr - min_lr) * (v - low) / (high - low) for v in curve]


@pytest.mark.parametrize("power", [1.0, 2.0, 10.0, 50.0])
@pytest.mark.parametrize("final_fraction", [0.0, 0.01])
def test_factor_follows_the_sharpdarts_schedule(power: float, final_fraction: float) -> None:
    epochs, lr = 12, 0.1
    expected = _sharpdarts(epochs, power, lr, lr * final_fraction)
    got = [lr * cosine_power_factor(t, epochs, power, final_fraction) for t in range(epochs + 1)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_power_shapes_the_decay_and_one_is_the_limit_of_cosine() -> None:
    epochs = 20
    cosine = [cosine_power_factor(t, epochs, 1.0) for t in range(epochs + 1)]
    assert cosine_power_factor(7, epochs, 1.0 + 1e-7) == pytest.approx(cosine[7], rel=1e-5)
    # A larger power falls faster at first and more slowly at the end: below cosine in the middle of the run.
    sharp = [cosine_power_factor(t, epochs, 10.0) for t in range(epochs + 1)]
    assert sharp[0] == cosine[0] == 1.0 and sharp[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(s < c for s, c in zip(sharp[1:-1], cosine[1:-1], strict=True))
    assert sharp[10] < 0.25 < cosine[10]
    with pytest.raises(ValueError, match=">= 1"):
        cosine_power_factor(0, epochs, 0.5)


def test_training_runs_the_schedule_epoch_by_epoch() -> None:
    import pytorch_lightning as pl
    import torch
    from conftest import bare_trainer

    from sweeplab.data.datamodule import InMemoryBatches
    from sweeplab_modules.tasks.base import SweepTask
    from sweeplab_modules.training import TrainingConfig

    class Regression(SweepTask):
        def shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
            x, y = batch
            return ((self.model(x) - y) ** 2).mean()

    class RecordRates(pl.Callback):
        def __init__(self) -> None:
            self.rates: list[float] = []

        def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])

    config = TrainingConfig(lr=0.05, scheduler="cosine_power", annealing_power=5.0, final_lr_fraction=0.1)
    recorder = RecordRates()
    x = torch.randn(8, 2)
    bare_trainer(max_epochs=6, callbacks=[recorder]).fit(
        Regression(torch.nn.Linear(2, 1), config),
        train_dataloaders=InMemoryBatches(x, x[:, :1], batch_size=4, shuffle=False),
    )
    assert recorder.rates == pytest.approx(_sharpdarts(6, 5.0, 0.05, 0.005)[:6], rel=1e-9)


def test_power_and_final_fraction_are_searchable_and_validated() -> None:
    text = TINY_STUDY.replace(
        "  batch_size: 8\n",
        "  batch_size: 8\n  scheduler: cosine_power\n  annealing_power: {low: 1, high: 20, log: true}\n"
        "  final_lr_fraction: 0.01\n",
    )
    study = parse_study(text, "s.yaml")
    optuna_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    powers = []
    for _ in range(5):
        trial = optuna_study.ask()
        training = study.sample(trial).training
        assert training.scheduler == "cosine_power" and training.final_lr_fraction == 0.01
        powers.append(training.annealing_power)
        optuna_study.tell(trial, 0.0)
    # A float range although its bounds are whole numbers (a bound of ge=1 does not make the field an integer).
    assert all(1 <= p <= 20 and p != int(p) for p in powers)

    bad = text.replace("{low: 1, high: 20, log: true}", "{low: 0.5, high: 20}").replace(
        "final_lr_fraction: 0.01", "final_lr_fraction: 1.0"
    )
    with pytest.raises(StudyError) as caught:
        parse_study(bad, "s.yaml")
    report = str(caught.value)
    assert "s.yaml:18 search.annealing_power.low: must be greater than or equal to 1" in report, report
    assert "s.yaml:19 search.final_lr_fraction: must be less than 1" in report, report
