"""Representation-learning building blocks: losses, heads, Householder projector, d-Simplex, relative
projection, CKA, compatibility metrics, probes, augmentations and the labelled data sets."""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO

from sweeplab.data import load_dataset
from sweeplab.datagen.features import FeatureStrengthsParams, generate_feature_strengths
from sweeplab_modules.representations import (
    ConvEncoder,
    ConvStitchingPair,
    FeatureDropout,
    HouseholderProjector,
    ImageAugment,
    RelativeProjection,
    ReweightHead,
    SimplexClassifier,
    average_compatibility,
    average_multimodel_accuracy,
    cka_matrix,
    empirical_compatibility,
    knn_accuracy,
    layer_activations,
    linear_cka,
    linear_probe_accuracy,
    make_head,
    nt_xent,
    search_accuracy,
    simplex_vertices,
    supervised_contrastive,
)


def _views(n: int = 8, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=generator), torch.randn(n, d, generator=generator)


# Losses


def test_nt_xent_equals_cross_entropy_over_the_other_views() -> None:
    z1, z2 = _views()
    t = 0.5
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / t
    logits.fill_diagonal_(float("-inf"))
    n = len(z1)
    twins = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    assert torch.allclose(nt_xent(z1, z2, t), F.cross_entropy(logits, twins), atol=1e-6)


def test_supcon_with_distinct_labels_is_nt_xent_and_rewards_same_class_alignment() -> None:
    z1, z2 = _views()
    assert torch.allclose(supervised_contrastive(z1, z2, torch.arange(8), 0.3), nt_xent(z1, z2, 0.3))
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    clustered = torch.where(labels[:, None] == 0, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(4, 1)
    assert supervised_contrastive(clustered, clustered, labels) < supervised_contrastive(mixed, mixed, labels)


def test_losses_reject_bad_input() -> None:
    z1, z2 = _views()
    with pytest.raises(ValueError, match="two views"):
        nt_xent(z1, z2[:4])
    with pytest.raises(ValueError, match="one label per sample"):
        supervised_contrastive(z1, z2, torch.arange(3))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(z1, z2, 0.0)


# Heads


@pytest.mark.parametrize(("rank", "in_features", "out_features"), [(3, 10, 6), (6, 6, 6), (1, 4, 9)])
def test_householder_projector_has_rank_k_and_unit_singular_values(rank: int, in_features: int, out_features: int):
    torch.manual_seed(rank)
    projector = HouseholderProjector(in_features, out_features, rank)
    singular_values = torch.linalg.svdvals(projector.weight.double())
    assert torch.allclose(singular_values[:rank], torch.ones(rank, dtype=torch.float64), atol=1e-5)
    assert torch.all(singular_values[rank:] < 1e-5)
    assert torch.linalg.matrix_rank(projector.weight).item() == rank
    projector(torch.randn(2, in_features)).sum().backward()
    assert projector.left.grad is not None and projector.right.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="rank must be"):
        HouseholderProjector(4, 3, 4)


def test_reweight_head_is_a_fixed_geometric_diagonal() -> None:
    head = ReweightHead(4, kappa=2.0)
    assert list(head.parameters()) == []
    h = torch.ones(1, 4)
    assert torch.allclose(head(h), torch.tensor([[1.0, 0.5, 0.25, 0.125]]))
    assert torch.equal(ReweightHead(4, kappa=1.0)(h), h)
    with pytest.raises(ValueError, match="kappa"):
        ReweightHead(4, kappa=0.5)


@pytest.mark.parametrize(
    ("kind", "out"), [("none", 12), ("linear", 5), ("mlp", 5), ("reweight", 12), ("householder", 5)]
)
def test_every_head_maps_features_to_the_loss_space(kind: str, out: int) -> None:
    assert make_head(kind, 12, 5, kappa=1.05, householder_rank=3)(torch.randn(4, 12)).shape == (4, out)


def test_unknown_head_is_named() -> None:
    with pytest.raises(ValueError, match="head must be one of"):
        make_head("deep", 4, 4, 1.0, 1)


# d-Simplex and relative representations


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_simplex_vertices_are_unit_equiangular_and_centred(n_classes: int) -> None:
    w = simplex_vertices(n_classes).double()
    assert w.shape == (n_classes, n_classes - 1)
    cosines = w @ w.T
    off_diagonal = cosines[~torch.eye(n_classes, dtype=torch.bool)]
    assert torch.allclose(cosines.diagonal(), torch.ones(n_classes, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(off_diagonal, torch.full_like(off_diagonal, -1 / (n_classes - 1)), atol=1e-6)
    assert torch.allclose(w.sum(dim=0), torch.zeros(n_classes - 1, dtype=torch.float64), atol=1e-6)


def test_simplex_classifier_is_not_trainable_and_scores_its_own_vertex_highest() -> None:
    classifier = SimplexClassifier(5)
    assert list(classifier.parameters()) == []
    assert torch.equal(classifier(classifier.weight).argmax(dim=1), torch.arange(5))


def test_relative_projection_is_invariant_to_rotation_and_scaling_of_the_latent_space() -> None:
    torch.manual_seed(0)
    latents, anchors = torch.randn(6, 4), torch.randn(3, 4)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4))
    relative = RelativeProjection()
    original = relative(latents, anchors)
    assert original.shape == (6, 3)
    assert torch.allclose(relative(3.0 * latents @ rotation, 3.0 * anchors @ rotation), original, atol=1e-5)
    assert not torch.allclose(relative(latents + 1.0, anchors + 1.0), original, atol=1e-3)  # not translation


def test_a_stitching_pair_reloads_with_its_anchors() -> None:
    torch.manual_seed(0)
    pair = ConvStitchingPair(1, 10, width=4, n_blocks=2, latent_dim=8, n_anchors=6)
    with pytest.raises(RuntimeError, match="anchors"):
        pair(torch.randn(2, 1, 8, 8))
    pair.set_anchors(torch.randn(6, 1, 8, 8))
    x = torch.randn(3, 1, 8, 8)
    reloaded = ConvStitchingPair(1, 10, width=4, n_blocks=2, latent_dim=8, n_anchors=6)
    reloaded.load_state_dict(pair.state_dict())
    assert torch.equal(reloaded.eval()(x), pair.eval()(x))
    assert pair.represent(1, x).shape == (3, 6) and pair.decode(0, pair.represent(1, x)).shape == (3, 10)


# CKA


def test_cka_known_answers() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8))
    rotation, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    for debiased in (False, True):
        assert linear_cka(x, x, debiased) == pytest.approx(1.0)
        assert linear_cka(x, 2.5 * x @ rotation, debiased) == pytest.approx(1.0)
    y = rng.standard_normal((50, 8))
    assert linear_cka(x, y) < 0.5
    assert linear_cka(x, np.hstack([x, np.zeros((50, 3))])) == pytest.approx(1.0)  # widths may differ
    assert linear_cka(torch.from_numpy(x), torch.from_numpy(x)) == pytest.approx(1.0)


def test_debiased_cka_removes_the_small_sample_bias() -> None:
    # Independent features, few samples, wide layers: the plain estimate is far above 0, the debiased one not.
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((20, 200)), rng.standard_normal((20, 200))
    assert linear_cka(x, y) > 0.7
    assert abs(linear_cka(x, y, debiased=True)) < 0.15


def test_cka_between_the_layers_of_a_network_and_between_two_networks() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 1, 8, 8)
    first, second = ConvEncoder(1, 4, 2), ConvEncoder(1, 4, 2)
    names = ["layers.2", "layers.6", "layers.9"]  # the ReLU of each block, the pooled features
    activations = layer_activations(first, x, names)
    assert [a.shape for a in activations.values()] == [(64, 256), (64, 128), (64, 8)]
    assert first.training  # mode restored
    within = cka_matrix(list(activations.values()))
    assert np.allclose(within.diagonal(), 1.0) and np.all(within < 1.0 + 1e-9)
    across = cka_matrix(list(activations.values()), list(layer_activations(second, x, names).values()))
    assert np.all((across > 0.0) & (across < 1.0))
    with pytest.raises(KeyError, match="no layers"):
        layer_activations(first, x, ["layers.99"])


def test_cka_matrix_and_bad_input() -> None:
    rng = np.random.default_rng(2)
    layers = [rng.standard_normal((30, w)) for w in (4, 6, 9)]
    matrix = cka_matrix(layers)
    assert matrix.shape == (3, 3) and np.allclose(matrix, matrix.T) and np.allclose(matrix.diagonal(), 1.0)
    with pytest.raises(ValueError, match="same samples"):
        linear_cka(layers[0], layers[1][:10])
    with pytest.raises(ValueError, match="finite"):
        linear_cka(np.full((5, 2), np.nan), layers[0][:5])


# Downstream evaluation and compatibility


def test_compatibility_metrics_on_a_known_matrix() -> None:
    matrix = np.array([[0.8, 0.0, 0.0], [0.85, 0.9, 0.0], [0.7, 0.95, 0.92]])
    assert empirical_compatibility(matrix, 1, 0) == pytest.approx(0.05)
    assert empirical_compatibility(matrix, 2, 0) == pytest.approx(-0.1)
    assert average_compatibility(matrix) == pytest.approx(2 / 3)  # (1,0) and (2,1) hold, (2,0) fails
    assert average_multimodel_accuracy(matrix) == pytest.approx((0.8 + 0.85 + 0.9 + 0.7 + 0.95 + 0.92) / 6)
    assert average_compatibility(matrix[:1, :1]) == 1.0


def test_search_probe_and_knn_are_perfect_on_separated_classes_and_chance_on_rotated_galleries() -> None:
    rng = np.random.default_rng(3)
    centres = 5.0 * np.eye(4)
    labels = np.repeat(np.arange(4), 25)
    features = centres[labels] + 0.3 * rng.standard_normal((100, 4))
    assert search_accuracy(features, labels, features, labels) == 1.0
    # A gallery in a permuted feature space: the classes land on each other's templates.
    assert search_accuracy(features, labels, features[:, [1, 2, 3, 0]], labels) == 0.0
    x, y = torch.from_numpy(features).float(), torch.from_numpy(labels)
    assert linear_probe_accuracy(x, y, x, y) == 1.0
    assert knn_accuracy(x, y, x, y, k=5) == 1.0


def test_linear_probe_sees_how_a_head_weights_the_features() -> None:
    # The label is carried by feature 0 only; shrinking that feature (as a reweighting head does to its last
    # features) must cost the probe accuracy, so pre- and post-projection probes can differ.
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(400, 10, generator=generator)
    labels = (features[:, 0] > 0).long()
    shrunk = features * torch.tensor([1e-3] + [1.0] * 9)
    even = linear_probe_accuracy(features[:200], labels[:200], features[200:], labels[200:])
    uneven = linear_probe_accuracy(shrunk[:200], labels[:200], shrunk[200:], labels[200:])
    assert even > 0.9 and uneven < 0.75, (even, uneven)


# Augmentations


def test_image_augmentation_is_seeded_and_shifts_content() -> None:
    images = torch.zeros(16, 1, 10, 10)
    images[:, :, 4:6, 4:6] = 1.0
    augment = ImageAugment(max_shift=2, pixel_dropout=0.0, noise_std=0.0, seed=7)
    shifted = augment(images)
    assert torch.equal(shifted, ImageAugment(2, 0.0, 0.0, seed=7)(images))
    assert torch.allclose(shifted.sum(dim=(1, 2, 3)), torch.full((16,), 4.0))  # the patch moved, whole
    assert len({tuple(torch.nonzero(s[0])[0].tolist()) for s in shifted}) > 1
    noisy = ImageAugment(0, pixel_dropout=0.5, noise_std=0.0, seed=1)(torch.ones(4, 1, 20, 20))
    assert 0.35 < noisy.mean().item() < 0.65


def test_feature_dropout_weakens_only_the_chosen_features() -> None:
    x = torch.ones(4000, 3)
    dropped = FeatureDropout([0.0, 0.8, 0.0], seed=0)(x)
    kept = dropped.mean(dim=0)
    assert kept[0] == 1.0 and kept[2] == 1.0 and abs(kept[1].item() - 0.2) < 0.03
    with pytest.raises(ValueError, match="2 dropout probabilities for 3 features"):
        FeatureDropout([0.1, 0.1])(x)


# Data sets


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    ("name", "side", "sizes"), [("digits", 8, (1000, 397, 400)), ("mnist5k", 28, (3500, 500, 1000))]
)
def test_bundled_image_sets_load_offline(no_network: None, name: str, side: int, sizes: tuple[int, int, int]) -> None:
    data = load_dataset(name)
    for split, n in zip(("train", "val", "test"), sizes, strict=True):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert x.shape == (n, 1, side, side) and y.shape == (n, 10, 1, 1)
        assert x.min() >= 0.0 and x.max() <= 1.0 and np.all(y.sum(axis=1) == 1)
    counts = np.bincount(data.y_train.reshape(-1, 10).argmax(axis=1), minlength=10)
    assert counts.min() > 0.7 * counts.mean()  # shuffled before splitting: every class in training
    if name == "mnist5k":  # all 5,000 images, 500 of each digit
        labels = np.concatenate(
            [getattr(data, f"y_{s}").reshape(-1, 10).argmax(axis=1) for s in ("train", "val", "test")]
        )
        assert np.array_equal(np.bincount(labels), np.full(10, 500))


def test_feature_strengths_label_is_the_sign_of_the_chosen_feature() -> None:
    params = FeatureStrengthsParams(strengths=[2.0, 1.0, 0.5], dim=5, noise_std=0.05, label_feature=2, n_train=200)
    arrays = generate_feature_strengths(params)
    x, y = arrays["x_train"], arrays["y_train"]
    assert x.shape == (200, 5) and y.shape == (200, 2)
    assert np.array_equal(y.argmax(axis=1), (x[:, 2] > 0).astype(int))
    assert np.allclose(np.abs(x[:, :3]).mean(axis=0), [2.0, 1.0, 0.5], atol=0.05)
    with pytest.raises(ValueError, match="label_feature"):
        FeatureStrengthsParams(strengths=[1.0], label_feature=1)


def test_studies_validate_and_cka_imports_without_torch() -> None:
    script = (
        "import sys\n"
        "from sweeplab.spec import load_study\n"
        "for name in ('projection_head', 'relative_stitching', 'simplex_compatibility'):\n"
        "    load_study(f'studies/{name}.yaml')\n"
        "from sweeplab_modules.representations.cka import linear_cka\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'mlxtend') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"
