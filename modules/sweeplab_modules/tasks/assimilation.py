"""Prediction and data assimilation over a horizon: a recursive model maps an initial state plus sparse, noisy,
irregular observations (the ``kdv`` / ``kuramoto_sivashinsky`` layout: state, observation values, sensor ranks)
to the next H states, and is scored with the observations, without them (pure forecast) and with fewer sensors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sweeplab_modules.losses import relative_l2
from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.tasks.operator import LOSSES as LOSS_FUNCTIONS
from sweeplab_modules.tasks.operator import ChannelNormalizer
from sweeplab_modules.training import TrainingConfig

__all__ = ["StateAssimilation"]


class StateAssimilation(SweepTask):
    """Trains the whole assimilated rollout against the true trajectory (``rel_l2`` by default, or ``mse``).

    The state and the observation values share one normalisation (mean and standard deviation of the training
    trajectories, all snapshots pooled); ranks pass unchanged. Logs ``train_loss``; on validation and test
    ``<stage>_loss``, ``<stage>_rel_l2`` (relative L2 over the horizon, with the observations),
    ``<stage>_rel_l2_forecast`` (the same model with every observation removed), ``<stage>_final_rel_l2`` and
    ``<stage>_final_rel_l2_forecast`` (the last snapshot only: the long-horizon error); on test also
    ``test_rel_l2_sensors_<m>`` with only the first m sensors of each trajectory kept, m = 1, 2, 4, ... up to the
    data's sensor count (and that count).
    """

    LOSSES = ("rel_l2", "mse")

    def __init__(self, model: nn.Module, training: TrainingConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(model, training)
        self.horizon = out_channels
        self.normalizer = ChannelNormalizer(1)
        self.sensor_counts: list[int] = []

    def choose_loss(self, loss: str | None) -> None:
        super().choose_loss(loss)
        self.loss_function = LOSS_FUNCTIONS[self.loss_name]

    def setup(self, stage: str) -> None:
        splits = self.trainer.datamodule.splits
        if stage == "fit":
            x, y = splits["train"]
            self.normalizer.fit(torch.cat([x[:, :1], y], dim=1), pooled=True)
        if stage == "test":
            most = int(splits["test"][0][:, 1 + self.horizon :].max().item())
            self.sensor_counts = sorted(({2**i for i in range(most.bit_length())} | {most}) - {0})

    def forward(self, x: Tensor, max_sensors: float = float("inf")) -> Tensor:
        """The H predicted states in physical units, using the observations of sensors ranked <= ``max_sensors``
        (0: none, a pure forecast)."""
        horizon = self.horizon
        ranks = x[:, 1 + horizon :]
        kept = ((ranks > 0) & (ranks <= max_sensors)).to(x.dtype)
        state = self.normalizer.encode(x[:, :1])
        values = self.normalizer.encode(x[:, 1 : 1 + horizon]) * kept
        prediction = self.model(torch.cat([state, values, ranks * kept], dim=1))
        return self.normalizer.decode(prediction)

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        n = len(x)
        prediction = self(x)
        loss = self.loss_function(prediction, y)
        self.log_epoch_mean(f"{stage}_loss", loss, n)
        if stage != "train":
            forecast = self(x, max_sensors=0)
            for suffix, output in (("", prediction), ("_forecast", forecast)):
                self.log_epoch_mean(f"{stage}_rel_l2{suffix}", relative_l2(output, y), n)
                self.log_epoch_mean(f"{stage}_final_rel_l2{suffix}", relative_l2(output[:, -1:], y[:, -1:]), n)
        if stage == "test":
            for count in self.sensor_counts:
                self.log_epoch_mean(f"test_rel_l2_sensors_{count}", relative_l2(self(x, count), y), n)
        return loss
