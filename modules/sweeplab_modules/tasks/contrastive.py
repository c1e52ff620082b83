"""Contrastive representation learning (SimCLR, SupCon, Hydra's arbitrary positive pairs) with a pluggable
projection head.

Each validation (and test) epoch freezes the encoder and measures linear-probe and k-NN accuracy on both the
pre-projection features ``h`` (what is kept) and the post-projection features ``z`` (what the loss saw): the
training split is the probe's training set, the evaluated split its test set.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sweeplab_modules.representations import (
    ContrastiveNet,
    HydraConvNet,
    hydra_loss,
    knn_accuracy,
    linear_probe_accuracy,
    nt_xent,
    supervised_contrastive,
)
from sweeplab_modules.tasks._labelled import LabelledTask, labels_of
from sweeplab_modules.training import TrainingConfig

__all__ = ["ContrastiveLearning"]

KNN_NEIGHBOURS = 20


class ContrastiveLearning(LabelledTask):
    """Two augmented views per sample (the model's own augmentation), contrastive loss on the head's output.

    Losses: ``simclr`` (NT-Xent, labels unused), ``supcon`` (supervised contrastive) and ``hydra`` (a model with
    a class-pair gate, ``HydraConvNet``: each sample paired with a class drawn by the model's ``pairing``, the
    view-1 embeddings gated as anchors against the view-2 keys). Logs ``<stage>_loss`` per epoch and, on
    validation and test, ``<stage>_probe_pre``, ``<stage>_probe_post``, ``<stage>_knn_pre``, ``<stage>_knn_post``
    (post: the head's ungated output)."""

    LOSSES = ("simclr", "supcon", "hydra")

    def __init__(self, model: ContrastiveNet, training: TrainingConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(model, training, in_channels)
        self.model: ContrastiveNet

    def choose_loss(self, loss: str | None) -> None:
        super().choose_loss(loss)
        if self.loss_name == "hydra" and not isinstance(self.model, HydraConvNet):
            raise ValueError(
                f"the hydra loss needs a model with a class-pair gate (hydra_cnn), got {type(self.model).__name__}"
            )

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        x = self.normalised(x)
        views = self.model.augment(torch.cat([x, x]))
        _, z = self.model(views)
        z1, z2 = z.chunk(2)
        temperature = self.model.temperature
        if self.loss_name == "supcon":
            loss = supervised_contrastive(z1, z2, labels_of(y), temperature)
        elif self.loss_name == "hydra":
            labels = labels_of(y)
            partners = self.model.partners(labels)
            gates = self.model.gate(labels, partners)
            loss = hydra_loss(z1, z2, labels, partners, gates, self.model.log_logit_scale.exp())
        else:
            loss = nt_xent(z1, z2, temperature)
        self.log_epoch_mean(f"{stage}_loss", loss, x.shape[0])
        return loss

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_downstream("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_downstream("test")

    def _log_downstream(self, stage: str) -> None:
        x_train, train_labels = self.split("train")
        x_eval, eval_labels = self.split(stage)
        train_h, train_z = self._features(x_train)
        eval_h, eval_z = self._features(x_eval)
        for which, train_features, eval_features in (("pre", train_h, eval_h), ("post", train_z, eval_z)):
            probe = linear_probe_accuracy(train_features, train_labels, eval_features, eval_labels)
            knn = knn_accuracy(train_features, train_labels, eval_features, eval_labels, KNN_NEIGHBOURS)
            self.log_metric(f"{stage}_probe_{which}", probe)
            self.log_metric(f"{stage}_knn_{which}", knn)

    def _features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        both = self.embed(lambda batch: torch.cat(self.model(batch), dim=1), x)
        return both[:, : self.model.encoder.feature_dim], both[:, self.model.encoder.feature_dim :]
