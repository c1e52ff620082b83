"""The one base Lightning module: optimisation from a TrainingConfig; tasks add a loss and their metrics."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from sweeplab_modules.layers.mup import learning_rate_scales
from sweeplab_modules.schedules import cosine_power_factor
from sweeplab_modules.training import TrainingConfig

__all__ = ["SweepTask"]


class SweepTask(pl.LightningModule):
    """Wraps an architecture (``self.model``) and owns optimiser and schedule.

    Subclasses implement ``shared_step(batch, stage) -> loss`` and record their metrics as ``<stage>_<name>``
    (the names their TaskEntry declares) with ``log_epoch_mean``, which logs each once per epoch, or, for a value
    of the whole epoch, ``log_metric``; both add the stage's ``metric_prefix`` in a later stage of the trial.
    A task that trains with a choice of losses names them in ``LOSSES`` and reads ``loss_name`` when it computes
    its loss, so that a later stage can change it.
    """

    LOSSES: tuple[str, ...] = ()
    """The values of ``TrainingConfig.loss`` the task trains with, its default first; empty: the task's loss is its
    own (``choose_loss`` leaves it alone)."""

    def __init__(self, model: nn.Module, training: TrainingConfig) -> None:
        super().__init__()
        self.model = model
        self.training_config = training
        self.metric_prefix = ""
        self.epochs_before = 0
        """The epochs of the trial's earlier stages: this stage's epoch 0 is the trial's epoch ``epochs_before``."""
        self._epoch_sums: dict[str, tuple[Tensor, int]] = {}
        self.choose_loss(training.loss)

    def choose_loss(self, loss: str | None) -> None:
        """Train with ``loss`` (None: the default) from the next fit on; a task whose loss needs more than its name
        (a function, a model that supports it) extends this."""
        if not self.LOSSES:
            return
        if loss is not None and loss not in self.LOSSES:
            raise ValueError(f"loss must be one of {self.LOSSES}, got {loss!r}")
        self.loss_name = loss or self.LOSSES[0]

    def continue_with(self, training: TrainingConfig, metric_prefix: str, epochs_before: int) -> None:
        """Train on in a later stage of the trial, after ``epochs_before`` epochs: ``training``'s settings (the next
        fit makes its optimiser and schedule from them, and trains with its loss) and metric names prefixed by
        ``metric_prefix`` (``finetune/val_rel_l2``)."""
        self.training_config = training
        self.metric_prefix = metric_prefix
        self.epochs_before = epochs_before
        self.choose_loss(training.loss)

    def log_epoch_mean(self, name: str, value: Tensor, batch_size: int) -> None:
        """Add a batch's mean ``value`` to the epoch mean logged as ``name`` when the epoch of its stage ends.

        What ``self.log(name, value, on_epoch=True)`` computes, without its cost: each call of Lightning's ``log``
        takes about 1 ms of Python, a tenth of a small operator's training step on a CPU.
        """
        total, count = self._epoch_sums.get(name, (0.0, 0))
        self._epoch_sums[name] = (total + value.detach() * batch_size, count + batch_size)

    def log_metric(self, name: str, value: Tensor | float) -> None:
        """Log ``value`` as ``name`` for the epoch, under the training stage's ``metric_prefix``: every metric a task
        records goes through here, so that a later stage's objective (``finetune/val_probe_pre``) is logged."""
        self.log(self.metric_prefix + name, value, on_epoch=True)

    def _log_epoch_means(self, stage: str) -> None:
        for name in [name for name in self._epoch_sums if name.startswith(f"{stage}_")]:
            total, count = self._epoch_sums.pop(name)
            self.log_metric(name, total / count)

    def on_train_epoch_end(self) -> None:
        self._log_epoch_means("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_means("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_means("test")

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def shared_step(self, batch: Any, stage: str) -> Tensor:
        raise NotImplementedError

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.shared_step(batch, "test")

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The trainable parameters grouped by learning rate: ``lr`` times the multiplier the model records for each
        (``learning_rate_scales``: muP's per-layer rates; a standard model has one group at ``lr``)."""
        scales = learning_rate_scales(self.model)
        missing = sorted(scales.keys() - dict(self.model.named_parameters()).keys())
        if missing:  # a conversion replaced layers muP scaled: their rates would silently be lr
            raise ValueError(f"the model no longer has the parameters muP scaled: {', '.join(missing)}")
        groups: dict[float, list[nn.Parameter]] = {}
        for name, parameter in self.named_parameters():
            if parameter.requires_grad:
                groups.setdefault(scales.get(name.removeprefix("model."), 1.0), []).append(parameter)
        return [{"params": params, "lr": self.training_config.lr * scale} for scale, params in groups.items()]

    def make_optimizer(self) -> torch.optim.Optimizer:
        """The configured optimiser over the trainable parameters (``parameter_groups``); a task with parameters on a
        manifold overrides it with a Riemannian one."""
        config = self.training_config
        parameters = self.parameter_groups()
        if config.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
        if config.optimizer == "adamw":
            return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)

    def configure_optimizers(self) -> Any:
        config = self.training_config
        optimizer = self.make_optimizer()
        if config.scheduler == "none":
            return optimizer
        interval = "epoch"
        scheduler: torch.optim.lr_scheduler.LRScheduler
        if config.scheduler == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
        elif config.scheduler in ("cosine", "cosine_power"):
            # As multipliers of each group's own rate (cosine annealing is power 1), so that the final fraction
            # applies per group.
            total = self.trainer.max_epochs or 1
            power = config.annealing_power if config.scheduler == "cosine_power" else 1.0
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda epoch: cosine_power_factor(epoch, total, power, config.final_lr_fraction)
            )
        else:
            # OneCycle schedules per optimisation step over the whole run, each group to its own peak.
            total = int(self.trainer.estimated_stepping_batches)
            peaks = [group["lr"] for group in optimizer.param_groups]
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total)
            interval = "step"
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}
