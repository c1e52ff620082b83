"""MIP (magnitude-invariant parametrisation, Ortiz, Guttag, Dalca, ICLR 2024) for the self-tuning strategy's
hypernetwork: the encoding, the gates reading it, the hyper-gradient through it, and the study option."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from sweeplab.spec import StudyError, parse_study
from sweeplab_modules.stn import (
    HyperContext,
    HyperparameterSpace,
    OnlineHyperparameter,
    StructuredBestResponse,
    constrained_value,
    magnitude_invariant_encoding,
    self_tuning_model,
)

DECLARED = {
    "rate": OnlineHyperparameter(apply="dropout", at=["0"], low=0.1, high=0.8, initial=0.3),
    "noise": OnlineHyperparameter(apply="input_noise", low=0.0, high=2.0, initial=0.05),
    "holes": OnlineHyperparameter(apply="cutout", low=1, high=5, initial=3),
}


def test_encoding_is_a_unit_quarter_circle_per_value() -> None:
    fractions = torch.tensor([[0.0, 1.0], [0.5, 0.25]])
    encoded = magnitude_invariant_encoding(fractions)
    assert encoded.shape == (2, 4)
    half = math.sqrt(0.5)
    assert encoded[0].tolist() == pytest.approx([1.0, 0.0, 0.0, 1.0], abs=1e-7)
    assert encoded[1].tolist() == pytest.approx([half, math.cos(math.pi / 8), half, math.sin(math.pi / 8)])


def test_gates_read_an_input_of_constant_norm_wherever_the_hyperparameters_are() -> None:
    space = HyperparameterSpace(DECLARED)
    unconstrained = torch.tensor([[-8.0, -8.0, -8.0], [0.0, 0.0, 0.0], [2.0, 1.0, -1.0], [40.0, 40.0, 40.0]])
    fractions = space.fractions(unconstrained)
    for i, declared in enumerate(DECLARED.values()):
        values = constrained_value(declared, unconstrained[:, i])
        assert fractions[:, i].tolist() == pytest.approx(((values - declared.low) / declared.span).tolist(), abs=1e-6)
    assert float(fractions.min()) >= 0 and float(fractions.max()) <= 1  # exactly, at the ends too
    mip, plain = HyperContext(space, "mip"), HyperContext(space)
    mip.set(unconstrained, {})
    plain.set(unconstrained, {})
    assert mip.input_size(3) == 6 and plain.input_size(3) == 3
    norms = mip.hypernet_input(4).norm(dim=1)
    assert norms.tolist() == pytest.approx([math.sqrt(3)] * 4, rel=1e-6)
    plain_norms = plain.hypernet_input(4).norm(dim=1)
    assert float(plain_norms.max() / plain_norms.min()) > 100  # what MIP removes: the input's magnitude varies
    with pytest.raises(ValueError, match="needs the HyperparameterSpace"):
        HyperContext(None, "mip")


def test_a_mip_self_tuning_model_starts_as_the_original_and_its_gates_pass_gradients_to_the_hyperparameters() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    x = torch.randn(5, 4)
    reference = model(x).detach()
    declared = {"rate": DECLARED["rate"], "noise": DECLARED["noise"]}
    converted, space, context = self_tuning_model(model, declared, "mip")
    responses = [m for m in converted.modules() if isinstance(m, StructuredBestResponse)]
    assert [r.weight_gate.in_features for r in responses] == [4, 4]  # cos and sin of each of 2 hyperparameters
    converted.eval()
    assert torch.allclose(converted(x), reference, atol=1e-6)
    for response in responses:
        nn.init.normal_(response.weight_gate.weight)
        nn.init.normal_(response.bias_gate.weight)
    context.set(space.perturbed(5), {})
    converted(x).pow(2).sum().backward()
    assert space.unconstrained.grad is not None and bool((space.unconstrained.grad != 0).all())
    assert space.raw_scale.grad is not None and bool((space.raw_scale.grad != 0).all())


_STUDY = """\
name: stn-mip
objective: {metric: val_loss, direction: minimize}
data: {name: digits, params: {n_train: 60, n_val: 40, n_test: 40, seed: 0}}
models:
  - {name: cnn_classifier, params: {width: 4, n_blocks: 1, hidden: 8}}
search: {batch_size: 20, lr: 1.0e-2}
strategy: self_tuning
hyperparameters:
  dropout: {apply: dropout, at: [head.1], low: 0.0, high: 0.8, initial: 0.2}
self_tuning:
  hypernet_input: mip
trainer: {max_epochs: 2, num_threads: 1}
sampler: random
budget: {n_trials: 1}
"""


def test_study_option_is_validated_searchable_and_trains(tmp_path: Path) -> None:
    study = parse_study(_STUDY, "s.yaml")
    assert study.self_tuning_fixed == {"hypernet_input": "mip"}
    searched = parse_study(_STUDY.replace("hypernet_input: mip", "hypernet_input: {choices: [unconstrained, mip]}"))
    assert searched.self_tuning_dimensions[0].choices == ("unconstrained", "mip")
    with pytest.raises(StudyError, match=r"s.yaml:11 self_tuning.hypernet_input: must be 'unconstrained' or 'mip'"):
        parse_study(_STUDY.replace("hypernet_input: mip", "hypernet_input: magnitude"), "s.yaml")

    import optuna
    from mlflow.tracking import MlflowClient

    from sweeplab.record import RUN_ATTR
    from sweeplab.run import run_study

    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    outcome = run_study(study, storage, tracking)
    assert outcome.finished == 1
    (trial,) = optuna.load_study(study_name="stn-mip", storage=storage).trials
    assert 0.0 < trial.params["hp.dropout"] < 0.8 and trial.params["hp.dropout"] != pytest.approx(0.2)
    assert MlflowClient(tracking).get_run(trial.user_attrs[RUN_ATTR]).data.params["stn.hypernet_input"] == "mip"
