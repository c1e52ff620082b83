"""Operator learning: map input functions to output functions on a grid (FNO, U-Net, MgNO, ...)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from sweeplab_modules.losses import mean_squared_error, relative_h1, relative_l2, vorticity_residual
from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.training import TrainingConfig

__all__ = ["ChannelNormalizer", "OperatorLearning"]

LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "rel_l2": relative_l2,
    "rel_h1": relative_h1,
    "mse": mean_squared_error,
}
# Physics losses: functions of the prediction and the coefficients of the data's equation (the data module's
# ``physics``), not of the target; bound when the task meets its data (``setup``).
PHYSICS_LOSSES: dict[str, Callable[..., Tensor]] = {"vorticity_residual": vorticity_residual}
# Logged on validation and test besides the loss: <stage>_<name>, and test_<name>_<size> at each test resolution.
METRICS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"rel_l2": relative_l2, "rel_h1": relative_h1}


def _physics_unbound(prediction: Tensor, target: Tensor) -> Tensor:
    raise RuntimeError("a physics loss is bound to the data's equation when the task meets its data (setup)")


class ChannelNormalizer(nn.Module):
    """Per-channel standardisation fitted on the training split, stored as buffers so it travels with the model.

    Per channel rather than per grid point (the FNO reference code's choice) so the same statistics apply at
    every resolution: a model trained on one grid can be tested on another.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    @torch.no_grad()
    def fit(self, samples: Tensor, pooled: bool = False) -> ChannelNormalizer:
        """Statistics of ``samples`` (batch, channels, *grid) per channel, or over all channels at once when
        ``pooled`` (channels that hold one field at different times, such as the snapshots of a rollout)."""
        reduce = list(range(samples.ndim)) if pooled else [d for d in range(samples.ndim) if d != 1]
        self.mean.copy_(samples.mean(dim=reduce).expand_as(self.mean))
        self.std.copy_(samples.std(dim=reduce).clamp_min(1e-12).expand_as(self.std))
        return self

    def _shape(self, x: Tensor) -> list[int]:
        return [1, -1] + [1] * (x.ndim - 2)

    def encode(self, x: Tensor) -> Tensor:
        return (x - self.mean.view(self._shape(x))) / self.std.view(self._shape(x))

    def decode(self, x: Tensor) -> Tensor:
        return x * self.std.view(self._shape(x)) + self.mean.view(self._shape(x))


class OperatorLearning(SweepTask):
    """Trains ``model`` on normalised inputs/outputs; losses and metrics are computed in physical units.

    Logs ``<stage>_loss`` (the training loss: ``rel_l2`` by default, ``rel_h1``, ``mse``, or the physics loss
    ``vorticity_residual``, the Spectral-Refiner's, on data that state their equation) per epoch, and on
    validation and test ``<stage>_rel_l2`` (the FNO paper's metric) and ``<stage>_rel_h1`` (see ``relative_h1``).
    When the data module has test splits at other resolutions (its test loaders after the first), their
    metrics are logged as ``test_rel_l2_<size>`` and ``test_rel_h1_<size>``, ``size`` the grid's last dim.

    Time series: when the data module's ``time_window`` is set, the model maps the last ``input_steps``
    snapshots to the next ``step``; validation and test roll it out over the whole output horizon and score the
    whole trajectory. Training either rolls out too, back-propagating through every call, with the loss the mean
    of the per-call losses (the FNO-2D recurrent setting, whose code sums them), or uses teacher forcing: every
    window of the true trajectory is one sample of one batched call. Both normalisers then use one mean and
    standard deviation over all snapshots, so that a prediction can be fed back at any position of the window.
    """

    LOSSES = (*LOSSES, *PHYSICS_LOSSES)

    def __init__(self, model: nn.Module, training: TrainingConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(model, training)
        self.input_normalizer = ChannelNormalizer(in_channels)
        self.output_normalizer = ChannelNormalizer(out_channels)
        # A sweeplab.data.TimeWindow (the platform's type; modules do not import the platform), set in setup.
        self.time_window: Any = None

    def choose_loss(self, loss: str | None) -> None:
        super().choose_loss(loss)
        self.loss_function: Callable[[Tensor, Tensor], Tensor] = LOSSES.get(self.loss_name, _physics_unbound)

    def _bind_physics(self, physics: Mapping[str, float] | None) -> None:
        if self.loss_name not in PHYSICS_LOSSES:
            return
        if physics is None:
            raise ValueError(f"loss {self.loss_name} needs the coefficients of the data's equation; the data have none")
        loss = functools.partial(PHYSICS_LOSSES[self.loss_name], **physics)
        self.loss_function = lambda prediction, target: loss(prediction)

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        self.time_window = getattr(datamodule, "time_window", None)
        self._bind_physics(getattr(datamodule, "physics", None))
        # Normalisation statistics come from the training split only (the data module exposes its tensors).
        if stage == "fit":
            x, y = datamodule.splits["train"]
            if self.time_window is None:
                self.input_normalizer.fit(x)
                self.output_normalizer.fit(y)
            else:
                trajectories = torch.cat([x, y], dim=1)
                self.input_normalizer.fit(trajectories, pooled=True)
                self.output_normalizer.fit(trajectories, pooled=True)

    def forward(self, x: Tensor) -> Tensor:
        """One call of the model, in physical units (one ``step`` of a time window)."""
        return self.output_normalizer.decode(self.model(self.input_normalizer.encode(x)))

    def rollout(self, x: Tensor, horizon: int) -> Tensor:
        """The ``horizon`` snapshots after ``x``, predicted call by call from the last ``input_steps``."""
        window, predicted = x, []
        for _ in range(0, horizon, self.time_window.step):
            step = self(window)
            predicted.append(step)
            window = torch.cat([window, step], dim=1)[:, -self.time_window.input_steps :]
        return torch.cat(predicted, dim=1)[:, :horizon]

    def predict(self, x: Tensor, horizon: int) -> Tensor:
        """The outputs for inputs ``x``: one call, or a rollout over ``horizon`` snapshots for a time window."""
        return self(x) if self.time_window is None else self.rollout(x, horizon)

    def _training_loss(self, x: Tensor, y: Tensor) -> Tensor:
        window = self.time_window
        if window is None:
            return self.loss_function(self(x), y)
        if window.training == "teacher_forcing":
            trajectory = torch.cat([x, y], dim=1)
            length = window.input_steps + window.step
            starts = range(0, trajectory.shape[1] - length + 1, window.step)
            windows = torch.stack([trajectory[:, t : t + length] for t in starts], dim=1).flatten(0, 1)
            return self.loss_function(self(windows[:, : window.input_steps]), windows[:, window.input_steps :])
        predicted = self.rollout(x, y.shape[1])
        calls = range(0, y.shape[1], window.step)
        losses = [self.loss_function(predicted[:, t : t + window.step], y[:, t : t + window.step]) for t in calls]
        return torch.stack(losses).mean()

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str, suffix: str = "") -> Tensor | None:
        x, y = batch
        if stage == "train":
            values = {"loss": self._training_loss(x, y)}
        else:
            prediction = self.predict(x, y.shape[1])
            values = {name: metric(prediction, y) for name, metric in METRICS.items()}
            if not suffix:  # at other resolutions only the metrics
                known = values.get(self.loss_name)  # the default loss is one of the metrics: computed once
                values["loss"] = known if known is not None else self.loss_function(prediction, y)
        for name, value in values.items():
            self.log_epoch_mean(f"{stage}_{name}{suffix}", value, batch_size=x.shape[0])
        return values.get("loss")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        # The first test loader is the training resolution; the others name their grid size.
        self.shared_step(batch, "test", "" if dataloader_idx == 0 else f"_{batch[0].shape[-1]}")
