"""The base Lightning task: epoch means of batch metrics, weighted by batch size, logged once per stage epoch."""

from __future__ import annotations

import pytest
import torch
from conftest import bare_trainer

from sweeplab.data.datamodule import InMemoryBatches
from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.training import TrainingConfig


class MeanOfTargets(SweepTask):
    """Logs the mean target of each batch, so the expected epoch means are known exactly."""

    def shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        self.log_epoch_mean(f"{stage}_target", y.mean(), x.shape[0])
        loss = ((self.model(x) - y) ** 2).mean()
        self.log_epoch_mean(f"{stage}_loss", loss, x.shape[0])
        return loss


def test_epoch_means_are_weighted_by_batch_size_and_kept_apart_per_stage() -> None:
    x = torch.zeros(7, 1)
    # Batches of 3, 3 and 1 samples with means 1, 4 and 6: the mean of the batch means would be 3.67, not 3.
    train_y = torch.arange(7, dtype=torch.float32).unsqueeze(1)
    val_y = torch.full((5, 1), 10.0)
    task = MeanOfTargets(torch.nn.Linear(1, 1), TrainingConfig(lr=1e-3))
    trainer = bare_trainer()
    trainer.fit(
        task,
        train_dataloaders=InMemoryBatches(x, train_y, batch_size=3, shuffle=False),
        val_dataloaders=InMemoryBatches(x[:5], val_y, batch_size=2, shuffle=False),
    )
    metrics = trainer.callback_metrics
    assert float(metrics["train_target"]) == pytest.approx(3.0)
    assert float(metrics["val_target"]) == pytest.approx(10.0)
    assert "val_loss" in metrics and "train_loss" in metrics
    assert task._epoch_sums == {}  # every stage's sums were logged and cleared at its epoch end
