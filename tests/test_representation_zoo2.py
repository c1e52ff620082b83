"""Representation zoo II: stationary representations' HOC compatibility training (Biondi et al., CVPR 2024),
Grassmann class representation (ICCV 2023), Hydra's arbitrary positive pairs and the Poincaré ResNet."""

from __future__ import annotations

import json
import math

import geoopt
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from conftest import write_study

from sweeplab.cli import main
from sweeplab.data import load_dataset
from sweeplab.data.datamodule import OperatorDataModule
from sweeplab.run import run_study
from sweeplab.spec import load_study
from sweeplab_modules.registry import build_model
from sweeplab_modules.representations import (
    GrassmannClassifier,
    PoincareBatchNorm2d,
    PoincareConv2d,
    PoincareLinear,
    PoincareResidualBlock,
    draw_partners,
    hoc_loss,
    hydra_loss,
)
from sweeplab_modules.tasks._riemannian import riemannian_optimizer
from sweeplab_modules.tasks.classification import ClassIncrementalLearning, TransferClassification
from sweeplab_modules.training import TrainingConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fit(task: pl.LightningModule, data_params: dict[str, int], batch_size: int, epochs: int) -> pl.Trainer:
    data = load_dataset("digits", data_params)
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(task, datamodule=OperatorDataModule(data, batch_size=batch_size))
    return trainer


# Stationary representations: HOC


def test_hoc_of_one_class_is_log_batch_minus_mu_when_new_equals_old() -> None:
    # One class: every off-diagonal entry is masked to 0 (not removed), so the logsumexp is log(n) and the
    # positive is mu for identical normalised features.
    features = torch.randn(6, 4)
    labels = torch.zeros(6, dtype=torch.long)
    assert hoc_loss(3.0 * features, features, labels, mu=10.0).item() == pytest.approx(math.log(6) - 10.0, abs=1e-5)


def test_hoc_matches_its_formula_and_pulls_new_features_to_the_old_ones() -> None:
    generator = torch.Generator().manual_seed(0)
    old = torch.randn(8, 5, generator=generator)
    new = torch.randn(8, 5, generator=generator, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    s = 10.0 * F.normalize(old, dim=1) @ F.normalize(new, dim=1).T
    expected = torch.stack(
        [torch.logsumexp(torch.where(labels == labels[i], 0.0, s[i]), 0) - s[i, i] for i in range(8)]
    ).mean()
    assert torch.allclose(hoc_loss(new, old, labels), expected, atol=1e-5)
    optimizer = torch.optim.SGD([new], lr=0.5)
    before = F.cosine_similarity(new, old).mean().item()
    for _ in range(200):
        optimizer.zero_grad()
        hoc_loss(new, old, labels).backward()
        optimizer.step()
    assert F.cosine_similarity(new, old).mean().item() > max(0.85, before + 0.5)


def test_hoc_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one shape"):
        hoc_loss(torch.randn(4, 3), torch.randn(4, 2), torch.arange(4))
    with pytest.raises(ValueError, match="one label per sample"):
        hoc_loss(torch.randn(4, 3), torch.randn(4, 3), torch.arange(3))
    with pytest.raises(ValueError, match="mu"):
        hoc_loss(torch.randn(4, 3), torch.randn(4, 3), torch.arange(4), mu=0.0)


def test_held_out_classes_are_never_trained_and_bad_protocols_are_named() -> None:
    model = build_model("incremental_cnn", 1, 10, width=4, n_blocks=2, n_tasks=3, held_out_classes=4)
    assert [list(model.classes_of_task(t)) for t in range(3)] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="held_out_classes"):
        build_model("incremental_cnn", 1, 10, held_out_classes=1)
    with pytest.raises(ValueError, match="n_tasks must be in 1..6"):
        build_model("incremental_cnn", 1, 10, n_tasks=7, held_out_classes=4)
    with pytest.raises(ValueError, match="hoc_lambda"):
        build_model("incremental_cnn", 1, 10, hoc_lambda=1.5)


def test_hoc_training_ties_each_successor_to_its_predecessor() -> None:
    # Three groups; with the hoc loss the successors train on lambda CE + (1 - lambda) HOC against the deployed
    # model, so the last one ends far more compatible with its predecessor, by the HOC measure, than plain
    # fine-tuning leaves it.
    compatibility = {}
    for loss in ("cross_entropy", "hoc"):
        pl.seed_everything(0, verbose=False)
        model = build_model(
            "incremental_cnn", 1, 10, width=8, n_blocks=2, n_tasks=3, replay_per_class=5, held_out_classes=4
        )
        task = ClassIncrementalLearning(model, TrainingConfig(lr=3e-3, batch_size=50, loss=loss), 1, 10)
        trainer = _fit(task, {"n_train": 300, "n_val": 100, "n_test": 100}, batch_size=50, epochs=6)
        assert len(task.deployed) == 2 and task.group == 2
        metrics = trainer.callback_metrics
        assert ("train_hoc" in metrics) == (loss == "hoc")
        assert {"val_ac", "val_am", "val_ecc", "val_ecc_min"} <= set(metrics)
        assert metrics["val_ecc_min"] <= metrics["val_ecc"]
        x, labels = task.split("train")
        known = labels < model.classes_of_task(2).stop  # the classes trained on
        with torch.no_grad():
            new, old = model.eval().encode(x[known]), task.deployed[-1].encode(x[known])
        compatibility[loss] = hoc_loss(new, old, labels[known], model.hoc_mu).item()
        matrix = task.compatibility_matrix("val")  # on the held-out digits 6-9 only: none was trained on
        assert matrix.shape == (3, 3) and 0.0 < matrix[2, 0] <= 1.0
    assert compatibility["hoc"] < compatibility["cross_entropy"] - 0.5, compatibility


# Grassmann class representation


def _digits(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_dataset("digits", {"n_train": 200, "n_val": 50, "n_test": 50, "seed": seed})
    x = torch.as_tensor(data.x_train[:n]).float()
    return (x - x.mean()) / x.std(), torch.as_tensor(data.y_train[:n]).flatten(start_dim=1).argmax(dim=1)


def _orthonormality_error(bases: torch.Tensor) -> float:
    gram = bases.transpose(-1, -2) @ bases
    return (gram - torch.eye(bases.shape[-1])).abs().max().item()


def test_grassmann_logits_depend_on_the_subspace_only() -> None:
    torch.manual_seed(0)
    classifier = GrassmannClassifier(features=12, n_classes=5, rank=3, scale=25.0)
    assert _orthonormality_error(classifier.bases.data) < 1e-5
    x = torch.randn(7, 12)
    logits = classifier(x)
    assert logits.shape == (7, 5) and logits.min() >= 0 and logits.max() <= 25.0 + 1e-4
    assert torch.allclose(classifier(4.0 * x), logits, atol=1e-4)  # the feature is normalised
    rotation, _ = torch.linalg.qr(torch.randn(3, 3))
    with torch.no_grad():
        classifier.bases.copy_(classifier.bases @ rotation)
    assert torch.allclose(classifier(x), logits, atol=1e-4)
    # A feature inside class 2's subspace scores the full scale there.
    assert classifier(classifier.bases.data[2, :, 0][None])[0, 2].item() == pytest.approx(25.0, abs=1e-4)
    with pytest.raises(ValueError, match="rank must be in 1..12"):
        GrassmannClassifier(12, 5, rank=13)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_grassmann_net_trains_every_parameter_overfits_a_batch_and_stays_on_the_manifold(optimizer: str) -> None:
    torch.manual_seed(0)
    x, labels = _digits(48)
    keep = labels < 6
    x, labels = x[keep], labels[keep]
    model = build_model("grassmann_cnn", 1, 10, width=8, n_blocks=2, subspace_dim=4, held_out_classes=4)
    features, logits = model(x)
    assert features.shape == (len(x), 16) and logits.shape == (len(x), 6)
    F.cross_entropy(logits, labels).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    lr = 0.05 if optimizer == "sgd" else 3e-3
    config = TrainingConfig(optimizer=optimizer, lr=lr, weight_decay=1e-3)
    sgd = riemannian_optimizer(model, config)
    start = model.classifier.bases.data.clone()
    for _ in range(60):
        sgd.zero_grad()
        F.cross_entropy(model(x)[1], labels).backward()
        sgd.step()
    bases = model.classifier.bases.data
    assert _orthonormality_error(bases) < 1e-4
    moved = (bases @ bases.transpose(1, 2) - start @ start.transpose(1, 2)).abs().max()
    assert moved > 0.02, moved  # the subspaces themselves moved (their projectors), not just their frames
    assert (model(x)[1].argmax(dim=1) == labels).float().mean() == 1.0
    with pytest.raises(ValueError, match="sgd and adam"):
        riemannian_optimizer(model, TrainingConfig(optimizer="adamw"))


def test_transfer_classification_trains_on_the_first_classes_and_probes_the_held_out_ones() -> None:
    pl.seed_everything(0, verbose=False)
    model = build_model("grassmann_cnn", 1, 10, width=8, n_blocks=2, subspace_dim=4, held_out_classes=4)
    task = TransferClassification(model, TrainingConfig(optimizer="sgd", lr=0.05, batch_size=50), 1, 10)
    trainer = _fit(task, {"n_train": 300, "n_val": 100, "n_test": 100}, batch_size=50, epochs=3)
    metrics = trainer.callback_metrics
    assert metrics["val_acc"] > 0.5 and metrics["val_probe_transfer"] > 0.5  # chance: 1/6 and 1/4
    assert 0.0 <= metrics["val_knn_transfer"] <= 1.0
    assert isinstance(trainer.optimizers[0], geoopt.optim.RiemannianSGD)
    assert _orthonormality_error(model.classifier.bases.data) < 1e-4


# Hydra: arbitrary positive pairs


def test_hydra_loss_with_own_class_partners_and_open_gates_is_supcon_over_one_direction() -> None:
    generator = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(8, 5, generator=generator), torch.randn(8, 5, generator=generator)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = hydra_loss(z1, z2, labels, labels, torch.ones(8, 5), logit_scale=10.0)
    # by hand: positives = same-class keys, negatives = the other classes' keys
    logits = 10.0 * F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T
    same = labels[:, None] == labels[None, :]
    terms = [
        torch.logsumexp(torch.cat([logits[i, j : j + 1], logits[i][~same[i]]]), 0) - logits[i, j]
        for i in range(8)
        for j in range(8)
        if same[i, j]
    ]
    assert torch.allclose(loss, torch.stack(terms).mean(), atol=1e-5)


def test_hydra_gate_decides_which_dimensions_a_cross_class_pair_shares() -> None:
    # Classes 0 and 1 agree on dimension 0 and differ on dimension 1. Paired with each other, a gate open on
    # dimension 0 only makes them good positives; a gate open on dimension 1 only does not.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 0.0]])
    labels, partners = torch.tensor([0, 1, 2]), torch.tensor([1, 0, 2])
    shared = hydra_loss(z, z, labels, partners, torch.tensor([[1.0, 0.0]] * 3), 10.0)
    opposed = hydra_loss(z, z, labels, partners, torch.tensor([[0.0, 1.0]] * 3), 10.0)
    assert shared < opposed - 1.0
    with pytest.raises(ValueError, match="partner label"):
        hydra_loss(z, z, labels, torch.tensor([5, 0, 2]), torch.ones(3, 2), 10.0)


@pytest.mark.parametrize("pairing", ["arbitrary", "identical", "distinct"])
def test_partners_are_drawn_from_the_batch_labels(pairing: str) -> None:
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 2, 2, 2, 3, 1])
    partners = draw_partners(labels, pairing)
    assert partners.shape == labels.shape and set(partners.tolist()) <= set(labels.tolist())
    if pairing == "identical":
        assert torch.equal(partners, labels)
    if pairing == "arbitrary":
        assert sorted(partners.tolist()) == sorted(labels.tolist())  # a permutation
    if pairing == "distinct":
        assert bool((partners != labels).all())
        assert torch.equal(
            draw_partners(torch.zeros(3, dtype=torch.long), "distinct"), torch.zeros(3, dtype=torch.long)
        )


def test_hydra_net_every_parameter_learns_and_a_batch_is_overfit() -> None:
    torch.manual_seed(0)
    x, labels = _digits(32)
    model = build_model("hydra_cnn", 1, 10, width=8, n_blocks=2, projection_dim=16, max_shift=0, pixel_dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    initial = None
    for step in range(80):
        views = model.augment(torch.cat([x, x]))
        z1, z2 = model(views)[1].chunk(2)
        partners = model.partners(labels)
        loss = hydra_loss(z1, z2, labels, partners, model.gate(labels, partners), model.log_logit_scale.exp())
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            initial = loss.item()
            missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
            assert not missing, missing
        optimizer.step()
    assert loss.item() < 0.3 * initial, (initial, loss.item())
    gates = model.eval().gate(torch.tensor([0, 3]), torch.tensor([3, 0]))
    assert gates.shape == (2, 16) and torch.allclose(gates[0], gates[1])  # symmetric in the two classes
    with pytest.raises(ValueError, match="pairing"):
        build_model("hydra_cnn", 1, 10, pairing="any")


def test_the_hydra_loss_needs_a_gated_model() -> None:
    from sweeplab_modules.tasks.contrastive import ContrastiveLearning

    plain = build_model("contrastive_cnn", 1, 10, width=4, n_blocks=1)
    with pytest.raises(ValueError, match="class-pair gate"):
        ContrastiveLearning(plain, TrainingConfig(loss="hydra"), 1, 10)


# Poincaré ResNet


@pytest.fixture
def ball() -> geoopt.PoincareBall:
    return geoopt.PoincareBall(c=0.1)


def _inside(points: torch.Tensor, ball: geoopt.PoincareBall, dim: int = -1) -> bool:
    return bool(torch.isfinite(points).all() and (points.norm(dim=dim) < 1 / ball.c.sqrt()).all())


def test_poincare_linear_starts_as_the_identity_and_its_conv_form_is_the_patch_form(ball) -> None:
    torch.manual_seed(0)
    x = ball.expmap0(torch.randn(5, 6))
    assert torch.allclose(PoincareLinear(ball, 6, 6)(x), x, atol=1e-5)  # half identity weights: the identity map
    conv = PoincareConv2d(ball, 3, 4, 3, stride=2)
    with torch.no_grad():
        conv.linear.weight.normal_()
        conv.linear.bias.normal_(0.0, 0.1)
    u = torch.randn(2, 3, 7, 7)
    patches = F.unfold(u, 3, padding=1, stride=2) * conv.beta_scale
    by_patch = ball.logmap0(conv.linear(ball.expmap0(patches.transpose(1, 2)))).transpose(1, 2).reshape(2, 4, 4, 4)
    assert torch.allclose(conv(u), by_patch, atol=1e-4)


def test_poincare_layers_are_finite_at_the_boundary_of_the_ball(ball) -> None:
    torch.manual_seed(0)
    # Points as close to the boundary as float32 allows, and tangent vectors far beyond it.
    direction = F.normalize(torch.randn(4, 6), dim=1)
    edge = direction * (1 - 1e-7) / ball.c.sqrt()
    edge.requires_grad_(True)
    linear = PoincareLinear(ball, 6, 3)
    out = linear(edge)
    logits = linear.hyperplane_distances(edge)
    (out.sum() + logits.sum()).backward()
    assert _inside(out, ball) and torch.isfinite(logits).all() and torch.isfinite(edge.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in linear.parameters() if p.requires_grad)
    huge = (1e4 * torch.randn(2, 3, 6, 6)).requires_grad_(True)
    block = PoincareResidualBlock(ball, 3, 5, stride=2)
    y = block(huge)
    y.sum().backward()
    assert y.shape == (2, 5, 3, 3) and torch.isfinite(y).all() and torch.isfinite(huge.grad).all()
    assert _inside(ball.expmap0(y, dim=1), ball, dim=1)
    assert all(torch.isfinite(p.grad).all() for p in block.parameters() if p.requires_grad)


def test_midpoint_batch_norm_centres_at_the_learned_mean_with_the_learned_variance(ball) -> None:
    torch.manual_seed(0)
    norm = PoincareBatchNorm2d(ball, 4)
    u = 2.0 + 0.5 * torch.randn(16, 4, 5, 5)  # off-centre points
    points = ball.expmap0(norm(u).permute(0, 2, 3, 1).reshape(-1, 4))
    centre = ball.weighted_midpoint(points, reducedim=[0])
    before = ball.weighted_midpoint(ball.expmap0(u.permute(0, 2, 3, 1).reshape(-1, 4)), reducedim=[0])
    assert before.norm() > 1.0 and centre.norm() < 0.05  # moved to the learned mean, which starts at the origin
    assert ball.dist(centre, points).square().mean().item() == pytest.approx(1.0, rel=0.05)  # learned variance 1
    assert not torch.equal(norm.running_mean, torch.zeros(4))  # running statistics follow the batches
    norm.eval()
    assert torch.isfinite(norm(u)).all()


def test_poincare_resnet_trains_every_parameter_keeps_its_means_on_the_ball_and_overfits_a_batch() -> None:
    torch.manual_seed(0)
    x, labels = _digits(32)
    keep = labels < 6
    x, labels = x[keep], labels[keep]
    model = build_model("poincare_resnet", 1, 10, widths=(4, 8, 8), blocks_per_stage=1, held_out_classes=4)
    features, logits = model(x)
    assert features.shape == (len(x), 8) and logits.shape == (len(x), 6)
    F.cross_entropy(logits, labels).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in trainable), [
        n for n, p in trainable if p.grad is None or not p.grad.abs().sum() > 0
    ]
    means = [m.mean for m in model.modules() if isinstance(m, PoincareBatchNorm2d)]
    optimizer = riemannian_optimizer(model, TrainingConfig(optimizer="adam", lr=1e-2))
    assert any(isinstance(p, geoopt.ManifoldParameter) for group in optimizer.param_groups for p in group["params"])
    for _ in range(60):
        optimizer.zero_grad()
        F.cross_entropy(model(x)[1], labels).backward()
        optimizer.step()
    ball = model.backbone.ball
    assert all(_inside(mean.data, ball) for mean in means) and max(m.data.norm() for m in means) > 1e-3
    assert (model(x)[1].argmax(dim=1) == labels).float().mean() == 1.0
    euclidean = build_model("poincare_resnet", 1, 10, widths=(4, 8, 8), geometry="euclidean")
    assert euclidean(x)[1].shape == (len(x), 6)
    with pytest.raises(ValueError, match="geometry"):
        build_model("poincare_resnet", 1, 10, geometry="spherical")


# Studies: tiny end to end through the runner, and compare's CKA between the new families

TINY_TRANSFER_STUDY = """\
name: tiny-transfer
objective: {metric: val_probe_transfer, direction: maximize}
data: {name: digits, params: {n_train: 200, n_val: 60, n_test: 60}}
models:
  - {name: grassmann_cnn, label: grassmann, params: {width: 8, n_blocks: 2, subspace_dim: 2, classifier: grassmann}}
  - {name: grassmann_cnn, label: softmax, params: {width: 8, n_blocks: 2, classifier: softmax}}
  - {name: grassmann_cnn, label: cosine, params: {width: 8, n_blocks: 2, classifier: cosine}}
search: {optimizer: sgd, lr: 0.05, batch_size: 50}
trainer: {max_epochs: 1, num_threads: 1}
sampler: grid
pruner: none
"""


@pytest.mark.slow
def test_compare_reports_cka_between_grassmann_and_vector_class_representations(tmp_path, capsys) -> None:
    study_file = write_study(tmp_path, TINY_TRANSFER_STUDY)
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    outcome = run_study(load_study(study_file), storage=storage, tracking_uri=tracking)
    assert outcome.finished == 3
    stores = ["--storage", storage, "--tracking-uri", tracking]
    assert main(["compare", str(study_file), *stores, "--format", "json", "--out", str(tmp_path)]) == 0
    cka = json.loads(capsys.readouterr().out)["cka"]["tiny-transfer"]
    assert sorted(cka["architectures"]) == ["cosine", "grassmann", "softmax"] and not cka["note"], cka
    linear = np.array(cka["linear"])
    assert np.allclose(np.diag(linear), 1.0) and np.allclose(linear, linear.T)
    assert ((linear > 0.0) & (linear < 1.0 - 1e-6))[~np.eye(3, dtype=bool)].all()  # related, not identical
