"""Hyper-training in Lightning (MacKay et al. 2019, Algorithm 1), with manual optimisation: after a warm-up,
every ``train_steps`` weight steps on training batches with per-example perturbed hyperparameters are followed
by ``val_steps`` hyper steps on validation batches that update the hyperparameters and their perturbation scales
through the best-response layers, regularisers off, minimising the validation loss minus tau times the entropy
of the perturbation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import torch
from torch import nn

from sweeplab_modules.stn._convert import best_response_layers, regularised
from sweeplab_modules.stn._hyper import HyperContext, HyperparameterSpace
from sweeplab_modules.stn._settings import OnlineHyperparameter, SelfTuningSettings
from sweeplab_modules.tasks.base import SweepTask

__all__ = ["SelfTuningMixin", "self_tuning_model", "self_tuning_task"]


def self_tuning_model(
    model: nn.Module, hyperparameters: Mapping[str, OnlineHyperparameter], hypernet_input: str = "unconstrained"
) -> tuple[nn.Module, HyperparameterSpace, HyperContext]:
    """``model`` converted in place into a self-tuning network: regularisers inserted and wrapped around it,
    linear and convolution layers turned into best responses to the returned hyperparameters, whose gates read
    ``hypernet_input`` (see ``HyperContext``)."""
    space = HyperparameterSpace(hyperparameters)
    context = HyperContext(space, hypernet_input)
    wrapped = regularised(model, hyperparameters, context)
    best_response_layers(wrapped, context.input_size(len(space)), context)
    return wrapped, space, context


class SelfTuningMixin(SweepTask):
    """Mixed in front of a registered task class (see ``self_tuning_task``): the task's own ``shared_step``
    computes the losses, so the self-tuning version of any task trains the way its task does.

    Logs, besides the task's metrics, ``hparam/<name>`` and ``hparam/<name>_scale`` at every weight step
    (the schedule, also kept in ``schedule``) and ``hyper_loss`` per epoch (validation loss of the hyper steps).
    """

    space: HyperparameterSpace
    context: HyperContext
    settings: SelfTuningSettings
    gradient_clip_val: float | None

    def attach(
        self,
        space: HyperparameterSpace,
        context: HyperContext,
        settings: SelfTuningSettings,
        gradient_clip_val: float | None = None,
    ) -> None:
        self.automatic_optimization = False
        self.space = space
        self.context = context
        self.settings = settings
        self.gradient_clip_val = gradient_clip_val
        self.schedule: list[dict[str, float]] = []
        self._weight_steps = 0
        self._validation_batches: Iterator[Any] = iter(())
        self._step_interval = False

    def configure_optimizers(self) -> Any:
        # The task's optimiser over the weights only; Adam over the hyperparameters and their scales.
        self.space.requires_grad_(False)
        try:
            weights = super().configure_optimizers()
        finally:
            self.space.requires_grad_(True)
        hyper = torch.optim.Adam(self.space.parameters(), lr=self.settings.hyper_lr)
        if isinstance(weights, dict):
            self._step_interval = weights["lr_scheduler"]["interval"] == "step"
            return [weights["optimizer"], hyper], [weights["lr_scheduler"]]
        return [weights, hyper]

    def _next_validation_batch(self) -> Any:
        batch = next(self._validation_batches, None)
        if batch is None:
            self._validation_batches = iter(self.trainer.datamodule.val_dataloader())
            batch = next(self._validation_batches)
        return [tensor.to(self.device) for tensor in batch]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        weights_optimizer, hyper_optimizer = self.optimizers()  # type: ignore[misc,attr-defined]
        point = self.space.current()
        self.schedule.append({"step": self._weight_steps, "epoch": self.current_epoch, **point})
        if self.logger is not None:
            self.logger.log_metrics({f"hparam/{k}": v for k, v in point.items()}, step=self._weight_steps)
        # Weights step: the perturbed hyperparameters are data here (the training loss never differentiates them).
        drawn = self.space.perturbed(batch[0].shape[0]).detach()
        self.context.set(drawn, self.space.applied(drawn))
        loss = self.shared_step(batch, "train")
        weights_optimizer.zero_grad()
        self.manual_backward(loss)
        if self.gradient_clip_val is not None:
            self.clip_gradients(weights_optimizer, gradient_clip_val=self.gradient_clip_val)  # type: ignore[arg-type]
        weights_optimizer.step()
        self.context.clear()
        if self._step_interval:
            self.lr_schedulers().step()  # type: ignore[union-attr]
        self._weight_steps += 1
        if self.current_epoch >= self.settings.warmup_epochs and self._weight_steps % self.settings.train_steps == 0:
            for _ in range(self.settings.val_steps):
                self._hyper_step(hyper_optimizer)  # type: ignore[arg-type]
        return loss.detach()  # for callbacks that watch the training loss (non-finite guard)

    def _hyper_step(self, hyper_optimizer: torch.optim.Optimizer) -> None:
        batch = self._next_validation_batch()
        self.model.eval()  # regularisers off: the hyperparameters act through the best response only
        try:
            drawn = self.space.perturbed(batch[0].shape[0])
            self.context.set(drawn, {})
            loss = self.shared_step(batch, "hyper")
            objective = loss - self.settings.entropy_weight * self.space.entropy()
            hyper_optimizer.zero_grad()
            self.manual_backward(objective)
            hyper_optimizer.step()
        finally:
            self.context.clear()
            self.model.train()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self._log_epoch_means("hyper")
        if not self._step_interval and self.lr_schedulers() is not None:
            self.lr_schedulers().step()  # type: ignore[union-attr]


@cache
def self_tuning_task(task_class: type[SweepTask]) -> type[SelfTuningMixin]:
    """The self-tuning version of a registered task class (same constructor; call ``attach`` before fitting)."""
    return type(f"SelfTuning{task_class.__name__}", (SelfTuningMixin, task_class), {})
