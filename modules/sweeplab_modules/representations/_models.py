"""The registered representation-learning architectures (each defines ``__init__`` with typed keyword parameters:
the registry reads them from this source). ``in_channels`` and ``out_channels`` (the number of classes) come from
the data set."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sweeplab_modules.representations._augment import FeatureDropout, ImageAugment
from sweeplab_modules.representations._encoders import ConvEncoder, MLPEncoder, ResNetEncoder
from sweeplab_modules.representations._grassmann import GrassmannClassifier
from sweeplab_modules.representations._heads import make_head
from sweeplab_modules.representations._hydra import PAIRINGS, PairGate, draw_partners
from sweeplab_modules.representations._poincare import PoincareLinear, PoincareResNetEncoder
from sweeplab_modules.representations._relative import RelativeProjection
from sweeplab_modules.representations._simplex import SimplexClassifier

__all__ = [
    "ContrastiveNet",
    "ConvContrastiveNet",
    "ConvStitchingPair",
    "GrassmannConvNet",
    "HydraConvNet",
    "IncrementalConvNet",
    "MLPContrastiveNet",
    "PoincareResNet",
]


class ContrastiveNet(nn.Module):
    """Encoder, projection head and the augmentation that makes the two views: ``forward(x) -> (h, z)`` with
    ``h`` the pre-projection features (what downstream tasks use) and ``z = head(h)`` (what the loss sees)."""

    encoder: nn.Module
    head: nn.Module
    augment: nn.Module
    temperature: float

    def _build_head(self, head: str, projection_dim: int, kappa: float, householder_rank: int) -> None:
        if projection_dim < 1:
            raise ValueError(f"projection_dim must be >= 1, got {projection_dim}")
        self.head = make_head(head, self.encoder.feature_dim, projection_dim, kappa, householder_rank)

    def encode(self, x: Tensor) -> Tensor:
        """The pre-projection features ``h``: the representation compared across models (CKA)."""
        return self.encoder(x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encode(x)
        return h, self.head(h)


class ConvContrastiveNet(ContrastiveNet):
    """Small CNN encoder for images with a projection head; views by random shifts, pixel dropout and noise."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 32,
        n_blocks: int = 3,
        head: Literal["none", "linear", "mlp", "reweight", "householder"] = "mlp",
        projection_dim: int = 64,
        kappa: float = 1.05,
        householder_rank: int = 16,
        temperature: float = 0.5,
        max_shift: int = 3,
        pixel_dropout: float = 0.1,
        noise_std: float = 0.1,
        augment_seed: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = ConvEncoder(in_channels, width, n_blocks)
        self._build_head(head, projection_dim, kappa, householder_rank)
        self.augment = ImageAugment(max_shift, pixel_dropout, noise_std, augment_seed)
        self.temperature = temperature


class HydraConvNet(ConvContrastiveNet):
    """``ConvContrastiveNet`` with Hydra's class-pair gate over the head's ``projection_dim`` outputs and a learned
    logit scale (initialised to ``1 / temperature``), for the contrastive task's ``hydra`` loss: each sample is
    paired with a class drawn by ``pairing`` (``arbitrary``: any, as in the paper; ``identical``; ``distinct``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 32,
        n_blocks: int = 3,
        head: Literal["none", "linear", "mlp", "reweight", "householder"] = "mlp",
        projection_dim: int = 64,
        kappa: float = 1.05,
        householder_rank: int = 16,
        temperature: float = 0.1,
        max_shift: int = 3,
        pixel_dropout: float = 0.1,
        noise_std: float = 0.1,
        augment_seed: int = 0,
        pairing: Literal["arbitrary", "identical", "distinct"] = "arbitrary",
        gate_embedding_dim: int = 64,
        gate_hidden: int = 128,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            width,
            n_blocks,
            head,
            projection_dim,
            kappa,
            householder_rank,
            temperature,
            max_shift,
            pixel_dropout,
            noise_std,
            augment_seed,
        )
        if pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.pairing = pairing
        gate_dim = self.head(torch.zeros(2, self.encoder.feature_dim)).shape[1]  # the loss space's dimension
        self.gate = PairGate(out_channels, gate_dim, gate_embedding_dim, gate_hidden)
        self.log_logit_scale = nn.Parameter(torch.tensor(-math.log(temperature)))

    def partners(self, labels: Tensor) -> Tensor:
        return draw_partners(labels, self.pairing)


class MLPContrastiveNet(ContrastiveNet):
    """MLP encoder for vectors with a projection head; views by feature dropout (one probability, or one per
    feature to weaken chosen features) and noise."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        depth: int = 2,
        head: Literal["none", "linear", "mlp", "reweight", "householder"] = "mlp",
        projection_dim: int = 32,
        kappa: float = 1.05,
        householder_rank: int = 8,
        temperature: float = 0.5,
        feature_dropout: float | list[float] = 0.2,
        noise_std: float = 0.0,
        augment_seed: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = MLPEncoder(in_channels, width, depth)
        self._build_head(head, projection_dim, kappa, householder_rank)
        self.augment = FeatureDropout(feature_dropout, noise_std, augment_seed)
        self.temperature = temperature


class IncrementalConvNet(nn.Module):
    """CNN backbone, a bias-free junction layer to ``out_channels - 1`` features and a classifier over all
    ``out_channels`` classes from the start: the fixed d-Simplex (stationary representations, Biondi et al.) or a
    learned linear layer (the baseline). ``forward(x) -> (features, logits)``.

    Also carries the class-incremental protocol its task runs: the classes arrive in ``n_tasks`` equal groups,
    each trained on with ``replay_per_class`` stored samples of every earlier class; at the end of each group the
    deployed model is replaced by the new one, fine-tuned from it (``finetune``) or trained from scratch
    (``reinit``). With the task's ``hoc`` loss the successor trains on ``hoc_lambda * CE + (1 - hoc_lambda) *
    HOC`` (Eq. 3 of Biondi et al.), the HOC loss with scale ``hoc_mu`` tying its features to the deployed model's.

    ``held_out_classes`` (the highest labels) are never trained on: the task then measures compatibility on them
    alone, the paper's open-set identification (its models train on CIFAR-100 and are compared on CIFAR-10);
    with 0, on the classes seen so far."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 32,
        n_blocks: int = 3,
        classifier: Literal["simplex", "learned"] = "simplex",
        n_tasks: int = 2,
        replay_per_class: int = 20,
        replacement: Literal["finetune", "reinit"] = "finetune",
        hoc_mu: float = 10.0,
        hoc_lambda: float = 0.1,
        held_out_classes: int = 0,
    ) -> None:
        super().__init__()
        if not 0 <= hoc_lambda <= 1 or hoc_mu <= 0:
            raise ValueError(f"need 0 <= hoc_lambda <= 1 and hoc_mu > 0, got {hoc_lambda} and {hoc_mu}")
        if held_out_classes == 1 or not 0 <= held_out_classes <= out_channels - 2:
            raise ValueError(f"held_out_classes must be 0 or in 2..{out_channels - 2}, got {held_out_classes}")
        trained = out_channels - held_out_classes
        if not 1 <= n_tasks <= trained:
            raise ValueError(f"n_tasks must be in 1..{trained} (the classes trained on), got {n_tasks}")
        if replay_per_class < 0:
            raise ValueError(f"replay_per_class must be >= 0, got {replay_per_class}")
        self.n_classes, self.n_tasks = out_channels, n_tasks
        self.replay_per_class, self.replacement = replay_per_class, replacement
        self.hoc_mu, self.hoc_lambda = hoc_mu, hoc_lambda
        self.n_trained_classes = trained
        self.backbone = ConvEncoder(in_channels, width, n_blocks)
        self.junction = nn.Linear(self.backbone.feature_dim, out_channels - 1, bias=False)
        if classifier == "simplex":
            self.classifier: nn.Module = SimplexClassifier(out_channels)
        elif classifier == "learned":
            self.classifier = nn.Linear(out_channels - 1, out_channels, bias=False)
        else:
            raise ValueError(f"classifier must be 'simplex' or 'learned', got {classifier!r}")

    def classes_of_task(self, task: int) -> range:
        """The classes task ``task`` introduces (equal groups in label order; the last takes the remainder)."""
        size = self.n_trained_classes // self.n_tasks
        return range(task * size, self.n_trained_classes if task == self.n_tasks - 1 else (task + 1) * size)

    def reinitialise(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def encode(self, x: Tensor) -> Tensor:
        """The junction's features, the stationary representation the classifier reads."""
        return self.junction(self.backbone(x))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.encode(x)
        return features, self.classifier(features)


class ConvStitchingPair(nn.Module):
    """Two independently initialised CNN encoder + decoder pairs, for zero-shot stitching (Moschella et al.).

    Each encoder maps to ``latent_dim`` absolute features; with ``projection = "relative"`` the decoder reads the
    cosines to ``n_anchors`` anchor samples embedded by the same encoder instead. A stitched model is the encoder
    of one member with the decoder of the other, never trained together. The anchors are set from training data
    (``set_anchors``) before training."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 32,
        n_blocks: int = 3,
        latent_dim: int = 64,
        projection: Literal["absolute", "relative"] = "relative",
        n_anchors: int = 128,
    ) -> None:
        super().__init__()
        if projection not in ("absolute", "relative"):
            raise ValueError(f"projection must be 'absolute' or 'relative', got {projection!r}")
        if n_anchors < 1 or latent_dim < 1:
            raise ValueError(f"n_anchors and latent_dim must be >= 1, got {n_anchors} and {latent_dim}")
        self.projection, self.n_anchors = projection, n_anchors
        self.relative = RelativeProjection()
        decoder_in = n_anchors if projection == "relative" else latent_dim
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for _ in range(2):  # built one after the other: different initial weights from the same seed
            encoder = ConvEncoder(in_channels, width, n_blocks)
            self.encoders.append(nn.Sequential(encoder, nn.Linear(encoder.feature_dim, latent_dim)))
            self.decoders.append(
                nn.Sequential(
                    nn.LayerNorm(decoder_in),
                    nn.Linear(decoder_in, latent_dim),
                    nn.SiLU(),
                    nn.Linear(latent_dim, out_channels),
                )
            )
        self.register_buffer("anchors", torch.empty(0))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # The anchors' shape is known only once they are set: take it from the checkpoint.
        anchors = state_dict.get(prefix + "anchors")
        if anchors is not None:
            self.anchors = torch.empty_like(anchors)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def set_anchors(self, anchors: Tensor) -> None:
        if anchors.shape[0] != self.n_anchors:
            raise ValueError(f"expected {self.n_anchors} anchors, got {anchors.shape[0]}")
        self.anchors = anchors.detach().clone()

    def represent(self, member: int, x: Tensor) -> Tensor:
        """What member ``member``'s decoder reads: absolute latents, or cosines to the anchors in its own space."""
        if self.projection == "absolute":
            return self.encoders[member](x)
        if self.anchors.numel() == 0:
            raise RuntimeError("relative projection needs anchors: call set_anchors first")
        # One pass for samples and anchors: batch norm normalises both with the same statistics.
        latents = self.encoders[member](torch.cat([x, self.anchors.to(x.dtype)]))
        return self.relative(latents[: x.shape[0]], latents[x.shape[0] :])

    def encode(self, x: Tensor) -> Tensor:
        """Member 0's absolute latents: its encoder's output, before any relative projection."""
        return self.encoders[0](x)

    def decode(self, member: int, representation: Tensor) -> Tensor:
        return self.decoders[member](representation)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of member 0 (its own encoder and decoder)."""
        return self.decode(0, self.represent(0, x))


class CosineClassifier(nn.Module):
    """``logit_i = scale * cos(x, w_i)``: the cosine softmax, the normalised vector-class baseline of GCR."""

    def __init__(self, features: int, n_classes: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(nn.init.kaiming_uniform_(torch.empty(n_classes, features), a=5**0.5))

    def forward(self, features: Tensor) -> Tensor:
        return self.scale * nn.functional.normalize(features, dim=1) @ nn.functional.normalize(self.weight, dim=1).T


class GrassmannConvNet(nn.Module):
    """CNN backbone and a classifier over the first ``out_channels - held_out_classes`` classes: Grassmann class
    subspaces of dimension ``subspace_dim`` (Wang et al., ICCV 2023), or a vector per class (``softmax``: linear
    logits; ``cosine``: scaled cosines). ``forward(x) -> (features, logits)``; ``encode`` is the backbone's
    output, the representation that transfers. The ``held_out_classes`` are the held-out task: never trained on,
    they measure how well the frozen features transfer (a linear probe fitted on them)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 32,
        n_blocks: int = 3,
        classifier: Literal["grassmann", "softmax", "cosine"] = "grassmann",
        subspace_dim: int = 8,
        scale: float = 25.0,
        held_out_classes: int = 4,
    ) -> None:
        super().__init__()
        if not 2 <= held_out_classes <= out_channels - 2:
            raise ValueError(f"held_out_classes must be in 2..{out_channels - 2}, got {held_out_classes}")
        self.n_trained_classes = out_channels - held_out_classes
        self.backbone = ConvEncoder(in_channels, width, n_blocks)
        features = self.backbone.feature_dim
        if classifier == "grassmann":
            self.classifier: nn.Module = GrassmannClassifier(features, self.n_trained_classes, subspace_dim, scale)
        elif classifier == "softmax":
            self.classifier = nn.Linear(features, self.n_trained_classes)
        elif classifier == "cosine":
            self.classifier = CosineClassifier(features, self.n_trained_classes, scale)
        else:
            raise ValueError(f"classifier must be 'grassmann', 'softmax' or 'cosine', got {classifier!r}")

    def encode(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.encode(x)
        return features, self.classifier(features)


class PoincareResNet(nn.Module):
    """A ResNet classifier over the first ``out_channels - held_out_classes`` classes on the Poincaré ball
    (van Spengler et al., ICCV 2023; ``geometry = "poincare"``: Poincaré convolutions, midpoint batch norm, Möbius
    residuals, curvature ``-curvature``, logits from a Poincaré multinomial logistic regression on the pooled
    features) or its Euclidean twin (``euclidean``: the same widths and depth, linear logits). ``encode`` is the
    pooled features (tangent vectors at the origin for the Poincaré net), what transfers to the held-out classes.
    ``forward(x) -> (features, logits)``, as the transfer_classification task expects."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        widths: tuple[int, ...] = (8, 16, 32),
        blocks_per_stage: int = 1,
        curvature: float = 0.1,
        geometry: Literal["poincare", "euclidean"] = "poincare",
        held_out_classes: int = 4,
    ) -> None:
        super().__init__()
        if not 2 <= held_out_classes <= out_channels - 2:
            raise ValueError(f"held_out_classes must be in 2..{out_channels - 2}, got {held_out_classes}")
        self.n_trained_classes = out_channels - held_out_classes
        self.geometry = geometry
        if geometry == "poincare":
            self.backbone: nn.Module = PoincareResNetEncoder(in_channels, widths, blocks_per_stage, curvature)
            self.classifier: nn.Module = PoincareLinear(self.backbone.ball, widths[-1], self.n_trained_classes)
        elif geometry == "euclidean":
            self.backbone = ResNetEncoder(in_channels, widths, blocks_per_stage)
            self.classifier = nn.Linear(widths[-1], self.n_trained_classes)
        else:
            raise ValueError(f"geometry must be 'poincare' or 'euclidean', got {geometry!r}")

    def encode(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.encode(x)
        if self.geometry == "poincare":
            return features, self.classifier.hyperplane_distances(self.backbone.ball.expmap0(features))
        return features, self.classifier(features)
