"""Supervised tasks on labelled samples: class-incremental learning with model replacement (compatibility of
successive models, for the d-Simplex fixed classifier), zero-shot stitching (absolute vs relative) and
classification with transfer to held-out classes (Grassmann class subspaces vs vector classes)."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sweeplab_modules.representations import (
    ConvStitchingPair,
    GrassmannConvNet,
    IncrementalConvNet,
    average_compatibility,
    average_multimodel_accuracy,
    empirical_compatibility,
    hoc_loss,
    knn_accuracy,
    linear_probe_accuracy,
    search_accuracy,
)
from sweeplab_modules.tasks._labelled import LabelledTask, labels_of
from sweeplab_modules.tasks._riemannian import riemannian_optimizer
from sweeplab_modules.tasks.contrastive import KNN_NEIGHBOURS
from sweeplab_modules.training import TrainingConfig

__all__ = ["ClassIncrementalLearning", "TransferClassification", "ZeroShotStitching"]


class ClassIncrementalLearning(LabelledTask):
    """The model's ``n_tasks`` groups of classes arrive one after another, each for an equal share of the epochs;
    a group is trained on with a replay memory of earlier classes. When a group ends, the model trained so far is
    frozen as the deployed model and its successor (fine-tuned or re-initialised) trains on the next group.

    Every validation (and test) epoch builds the compatibility matrix ``C[i, j]`` over the frozen models and the
    current one: 1:N search accuracy of queries (the evaluated split) embedded by model ``i`` against class
    templates of a gallery (the training split) embedded by model ``j``, on the classes seen so far (or on the
    model's held-out classes, never trained on: open-set identification as in the paper). Logs
    ``<stage>_loss``, ``<stage>_acc`` (current model, classes seen so far), ``<stage>_ac`` (average compatibility),
    ``<stage>_am`` (average multi-model accuracy) and, from the second group on, ``<stage>_ecc``: the empirical
    compatibility of the latest replacement, ``C[new, old] - C[old, old]`` (> 0: compatible), and
    ``<stage>_ecc_min``, the smallest over all pairs (> 0: compatible at every step, AC = 1). The test stage also
    logs the matrix itself, ``test_c_<i>_<j>``.

    Losses: ``cross_entropy``, or ``hoc`` (stationary representations' model-replacement training): from the
    second group on, ``hoc_lambda * CE + (1 - hoc_lambda) * HOC`` with the HOC loss between the successor's
    features and the deployed (frozen) model's on the same batch, current and replayed samples alike."""

    LOSSES = ("cross_entropy", "hoc")

    def __init__(
        self, model: IncrementalConvNet, training: TrainingConfig, in_channels: int, out_channels: int
    ) -> None:
        super().__init__(model, training, in_channels)
        self.model: IncrementalConvNet
        self.group = 0
        self.deployed: list[nn.Module] = []  # frozen predecessors, oldest first (not parameters of this task)
        self.memory = torch.empty(0)
        self.memory_labels = torch.empty(0, dtype=torch.long)
        self.replay_share = 0.0  # the memory's share of the samples the current group trains on

    def on_fit_start(self) -> None:
        if (self.trainer.max_epochs or 0) < self.model.n_tasks:
            raise ValueError(f"max_epochs must be >= n_tasks ({self.model.n_tasks}): one epoch per group at least")

    def on_train_epoch_start(self) -> None:
        group = self.current_epoch * self.model.n_tasks // (self.trainer.max_epochs or 1)
        if group == self.group:
            return
        frozen = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.deployed.append(frozen)
        self.group = group
        if self.model.replacement == "reinit":
            self.model.reinitialise()
        for optimizer in self.trainer.optimizers:  # a new model starts with fresh optimiser moments
            optimizer.state.clear()
        self._fill_memory()

    def _fill_memory(self) -> None:
        """The first ``replay_per_class`` training samples of every class of the earlier groups."""
        x, labels = self.split("train")
        seen = [c for g in range(self.group) for c in self.model.classes_of_task(g)]
        index = torch.cat([torch.nonzero(labels == c)[: self.model.replay_per_class, 0] for c in seen])
        self.memory, self.memory_labels = x[index], labels[index]
        current = self.model.classes_of_task(self.group)
        group_size = int(((labels >= current.start) & (labels < current.stop)).sum())
        self.replay_share = len(index) / (len(index) + group_size)

    def _seen_classes(self) -> Tensor:
        return torch.arange(self.model.classes_of_task(self.group).stop, device=self.device)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        x, y = batch
        x, labels = self.normalised(x), labels_of(y)
        current = self.model.classes_of_task(self.group)
        keep = (labels >= current.start) & (labels < current.stop)
        x, labels = x[keep], labels[keep]
        if len(self.memory):
            # Replay in proportion to the memory's share of the data this group trains on.
            n_replay = max(1, round(len(batch[0]) * self.replay_share))
            index = torch.randint(len(self.memory), (n_replay,), device=self.memory.device)
            x, labels = torch.cat([x, self.memory[index]]), torch.cat([labels, self.memory_labels[index]])
        if len(x) == 0:
            return None  # a batch without the current classes: nothing to learn from
        features, logits = self.model(x)
        loss = F.cross_entropy(logits, labels)
        if self.loss_name == "hoc" and self.deployed:
            with torch.no_grad():
                old_features = self.deployed[-1].encode(x)
            compatibility = hoc_loss(features, old_features, labels, self.model.hoc_mu)
            self.log_epoch_mean("train_hoc", compatibility, len(x))
            loss = self.model.hoc_lambda * loss + (1 - self.model.hoc_lambda) * compatibility
        self.log_epoch_mean("train_loss", loss, len(x))
        return loss

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        x, labels = self.normalised(x), labels_of(y)
        seen = self._seen_classes()
        keep = labels < len(seen)
        if not keep.any():
            return torch.zeros((), device=self.device)  # no sample of a class seen so far in this batch
        logits = self.model(x[keep])[1][:, seen]  # predict among the classes seen so far
        loss = F.cross_entropy(logits, labels[keep])
        accuracy = (logits.argmax(dim=1) == labels[keep]).float().mean()
        self.log_epoch_mean(f"{stage}_loss", loss, int(keep.sum()))
        self.log_epoch_mean(f"{stage}_acc", accuracy, int(keep.sum()))
        return loss

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_compatibility("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_compatibility("test")

    def _compared(self, labels: Tensor) -> Tensor:
        """Which samples the compatibility is measured on: the held-out classes if any, else those seen so far."""
        if self.model.n_trained_classes < self.model.n_classes:
            return labels >= self.model.n_trained_classes
        return labels < len(self._seen_classes())

    def compatibility_matrix(self, stage: str) -> np.ndarray:
        """``C[i, j]`` for the deployed models and the current one (last), lower triangle (``i >= j``) filled."""
        queries, query_labels = self.split(stage)
        gallery, gallery_labels = self.split("train")
        compared_queries, compared_gallery = self._compared(query_labels), self._compared(gallery_labels)
        queries, query_labels = queries[compared_queries], query_labels[compared_queries].cpu().numpy()
        gallery, gallery_labels = gallery[compared_gallery], gallery_labels[compared_gallery]
        models = [*self.deployed, self.model]
        query_features = [self.embed(lambda b, m=m: m(b)[0], queries).cpu().numpy() for m in models]
        gallery_features = [self.embed(lambda b, m=m: m(b)[0], gallery).cpu().numpy() for m in models]
        matrix = np.zeros((len(models), len(models)))
        for i in range(len(models)):
            for j in range(i + 1):
                matrix[i, j] = search_accuracy(
                    query_features[i], query_labels, gallery_features[j], gallery_labels.cpu().numpy()
                )
        return matrix

    def _log_compatibility(self, stage: str) -> None:
        matrix = self.compatibility_matrix(stage)
        self.log_metric(f"{stage}_ac", average_compatibility(matrix))
        self.log_metric(f"{stage}_am", average_multimodel_accuracy(matrix))
        if len(matrix) > 1:
            self.log_metric(f"{stage}_ecc", empirical_compatibility(matrix, len(matrix) - 1, len(matrix) - 2))
            margins = [empirical_compatibility(matrix, i, j) for i in range(len(matrix)) for j in range(i)]
            self.log_metric(f"{stage}_ecc_min", min(margins))
        if stage == "test":
            for i, j in zip(*np.tril_indices(len(matrix)), strict=True):
                self.log_metric(f"test_c_{i}_{j}", float(matrix[i, j]))


class ZeroShotStitching(LabelledTask):
    """Trains the two members of a ConvStitchingPair side by side (separate parameters and losses: independent
    models seeing the same batches) with cross-entropy. Logs ``<stage>_loss`` and, on validation and test,
    ``<stage>_acc`` (each member on its own, averaged) and ``<stage>_stitched_acc`` (encoder of one member with
    the decoder of the other, both ways, averaged; never trained together)."""

    def __init__(self, model: ConvStitchingPair, training: TrainingConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(model, training, in_channels)
        self.model: ConvStitchingPair

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.model.projection == "relative":
            x, _ = self.trainer.datamodule.splits["train"]
            if len(x) < self.model.n_anchors:
                raise ValueError(f"{self.model.n_anchors} anchors requested, the training split has {len(x)} samples")
            # A fixed random subset of the training split (drawn from the seeded global generator).
            index = torch.randperm(len(x))[: self.model.n_anchors]
            self.model.set_anchors(self.normalised(x[index]))

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        x, labels = self.normalised(x), labels_of(y)
        representations = [self.model.represent(member, x) for member in (0, 1)]
        own = [self.model.decode(member, representations[member]) for member in (0, 1)]
        loss = sum(F.cross_entropy(logits, labels) for logits in own) / 2
        self.log_epoch_mean(f"{stage}_loss", loss, len(x))
        if stage != "train":
            stitched = [self.model.decode(1 - member, representations[member]) for member in (0, 1)]
            for name, logits in (("acc", own), ("stitched_acc", stitched)):
                accuracy = torch.stack([(lg.argmax(dim=1) == labels).float().mean() for lg in logits]).mean()
                self.log_epoch_mean(f"{stage}_{name}", accuracy, len(x))
        return loss  # type: ignore[return-value]


class TransferClassification(LabelledTask):
    """Cross-entropy classification of the model's trained classes (the first ``n_trained_classes`` labels; the
    samples of the held-out classes are skipped in training), optimised by geoopt's Riemannian SGD or Adam so
    that class subspaces stay on their manifold (plain parameters step exactly as with torch's optimisers).

    Logs ``<stage>_loss`` and ``<stage>_acc`` on the trained classes and, on validation and test, the transfer of
    the frozen backbone features (``encode``) to the held-out classes: ``<stage>_probe_transfer`` (a linear probe
    fitted on the training split's held-out samples, scored on the evaluated split's) and ``<stage>_knn_transfer``
    (20-NN, cosine)."""

    def __init__(self, model: GrassmannConvNet, training: TrainingConfig, in_channels: int, out_channels: int) -> None:
        super().__init__(model, training, in_channels)
        self.model: GrassmannConvNet

    def make_optimizer(self) -> torch.optim.Optimizer:
        return riemannian_optimizer(self, self.training_config)

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        x, labels = self.normalised(x), labels_of(y)
        trained = labels < self.model.n_trained_classes
        if not trained.any():
            return torch.zeros((), device=self.device, requires_grad=stage == "train")  # held-out samples only
        logits = self.model(x[trained])[1]
        loss = F.cross_entropy(logits, labels[trained])
        n = int(trained.sum())
        self.log_epoch_mean(f"{stage}_loss", loss, n)
        if stage != "train":
            self.log_epoch_mean(f"{stage}_acc", (logits.argmax(dim=1) == labels[trained]).float().mean(), n)
        return loss

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_transfer("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_transfer("test")

    def _log_transfer(self, stage: str) -> None:
        (x_train, train_labels), (x_eval, eval_labels) = self.split("train"), self.split(stage)
        held_train, held_eval = (
            train_labels >= self.model.n_trained_classes,
            eval_labels >= self.model.n_trained_classes,
        )
        train_features = self.embed(self.model.encode, x_train[held_train])
        eval_features = self.embed(self.model.encode, x_eval[held_eval])
        train_labels, eval_labels = train_labels[held_train], eval_labels[held_eval]
        probe = linear_probe_accuracy(train_features, train_labels, eval_features, eval_labels)
        knn = knn_accuracy(train_features, train_labels, eval_features, eval_labels, KNN_NEIGHBOURS)
        self.log_metric(f"{stage}_probe_transfer", probe)
        self.log_metric(f"{stage}_knn_transfer", knn)
