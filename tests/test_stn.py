"""Self-tuning networks: transforms and ranges, the best-response gating, conversion of a registered model, and
a tiny self-tuning study whose schedule is logged, recorded as Optuna parameters and replayed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sweeplab_modules.layers.pointwise import PointwiseLinear
from sweeplab_modules.registry import build_model
from sweeplab_modules.stn import (
    HyperContext,
    HyperparameterSpace,
    OnlineHyperparameter,
    StructuredBestResponse,
    applied_value,
    constrained_value,
    cutout,
    self_tuning_model,
)

DECLARED = {
    "rate": OnlineHyperparameter(apply="dropout", at=["x"], low=0.1, high=0.8, initial=0.3),
    "noise": OnlineHyperparameter(apply="input_noise", low=0.0, high=2.0, initial=0.05),
    "holes": OnlineHyperparameter(apply="cutout", low=1, high=5, initial=3),
}


@pytest.mark.parametrize("name", list(DECLARED))
def test_transforms_start_at_initial_and_stay_in_range(name: str) -> None:
    declared = DECLARED[name]
    start = constrained_value(declared, torch.tensor(declared.unconstrained_initial()))
    assert float(applied_value(declared, start)) == pytest.approx(declared.initial, rel=1e-5)
    extremes = constrained_value(declared, torch.tensor([-50.0, -3.0, 0.0, 3.0, 50.0]))
    applied = applied_value(declared, extremes)
    assert bool((applied >= declared.low).all()) and bool((applied <= declared.high).all())
    assert bool((extremes[1:] >= extremes[:-1]).all())  # monotone: gradients point the same way everywhere
    if declared.discrete:
        assert applied.tolist() == [1.0, 1.0, 3.0, 5.0, 5.0]


def test_perturbation_and_entropy_follow_the_scales() -> None:
    space = HyperparameterSpace(DECLARED)
    torch.manual_seed(0)
    drawn = space.perturbed(20000)
    assert drawn.std(dim=0).tolist() == pytest.approx([0.5, 0.5, 0.5], rel=0.03)
    assert float(space.entropy().detach()) == pytest.approx(3 * torch.log(torch.tensor(0.5)).item(), rel=1e-5)
    assert space.current()["holes_scale"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("layer", "shape"),
    [(nn.Linear(3, 4), (5, 3)), (nn.Conv2d(3, 4, 3, padding=1), (5, 3, 6, 6)), (PointwiseLinear(3, 4), (5, 3, 6, 6))],
)
def test_best_response_gates_each_unit_by_a_linear_function_of_the_hyperparameters(
    layer: nn.Module, shape: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    context = HyperContext()
    x = torch.randn(shape)
    reference = layer(x)
    converted = StructuredBestResponse(layer, 2, context)
    hyper = torch.randn(5, 2)
    context.set(hyper, {})
    assert torch.allclose(converted(x), reference)  # zero gates: the original layer
    nn.init.normal_(converted.weight_gate.weight)
    nn.init.normal_(converted.bias_gate.weight)
    unit_shape = (5, 4) + (1,) * (len(shape) - 2)  # units on dim 1 for convolutions and pointwise layers
    weight_gate = (hyper @ converted.weight_gate.weight.T).view(unit_shape)
    bias_gate = (hyper @ converted.bias_gate.weight.T * converted.response_bias).view(unit_shape)
    expected = reference + weight_gate * converted.response(x) + bias_gate
    assert torch.allclose(converted(x), expected, atol=1e-6)
    # Example i's output depends on its own hyperparameters only.
    other = hyper.clone()
    other[1:] += 1.0
    context.set(other, {})
    assert torch.allclose(converted(x)[0], expected[0], atol=1e-6)
    assert not torch.allclose(converted(x)[1:], expected[1:])
    context.set(torch.randn(3, 2), {})
    with pytest.raises(ValueError, match="drawn for 3 examples"):
        converted(x)


def test_cutout_zeroes_a_square_of_each_images_own_length() -> None:
    images = torch.ones(3, 1, 8, 8)
    holes = cutout(images, torch.tensor([0, 2, 4]))
    zeros = (holes == 0).sum(dim=(1, 2, 3)).tolist()
    assert zeros[0] == 0 and 0 < zeros[1] <= 4 and 4 < zeros[2] <= 16


def test_a_registered_model_converts_without_rewriting_it() -> None:
    torch.manual_seed(0)
    model = build_model("fno2d", 1, 1, width=4, modes=2, n_layers=2, projection_width=8, padding=0, activation="gelu")
    x = torch.randn(2, 1, 9, 9)
    reference = model.eval()(x)
    declared = {"drop": OnlineHyperparameter(apply="dropout", at=["fourier_layers.*"], high=0.5, initial=0.1)}
    converted, space, context = self_tuning_model(model, declared)
    responses = [m for m in converted.modules() if isinstance(m, StructuredBestResponse)]
    assert len(responses) >= 4  # lift, the two skip connections, the projection MLP's two layers
    assert torch.allclose(converted.eval()(x), reference, atol=1e-6)
    converted.train()
    context.set(space.perturbed(2), {"drop": torch.tensor([0.0, 0.9])})
    assert converted(x).shape == reference.shape
    with pytest.raises(ValueError, match="matches no module"):
        self_tuning_model(
            build_model("fno2d", 1, 1, width=4, modes=2, n_layers=1, projection_width=8, padding=0, activation="gelu"),
            {"drop": OnlineHyperparameter(apply="dropout", at=["blocks.*"], high=0.5, initial=0.1)},
        )


STN_STUDY = """\
name: stn-tiny
objective: {metric: val_loss, direction: minimize}
data:
  name: digits
  params: {n_train: 60, n_val: 40, n_test: 40, seed: 0}
models:
  - name: cnn_classifier
    params: {width: 4, n_blocks: 1, hidden: 8}
search:
  batch_size: 20
  lr: 1.0e-2
strategy: self_tuning
hyperparameters:
  dropout: {apply: dropout, at: [head.1], low: 0.0, high: 0.8, initial: 0.2}
  noise: {apply: input_noise, low: 0.0, high: 1.0, initial: 0.1}
  cutout: {apply: cutout, low: 0, high: 4, initial: 2}
self_tuning:
  warmup_epochs: 1
  train_steps: 1
  hyper_lr: {low: 0.2, high: 0.3}
trainer: {max_epochs: 3, num_threads: 1}
sampler: random
budget: {n_trials: 1}
"""


@pytest.mark.slow
def test_self_tuning_study_logs_the_schedule_records_the_trial_and_replays(tmp_path: Path) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    from sweeplab.cli import main
    from sweeplab.record import RUN_ATTR
    from sweeplab.run import run_study
    from sweeplab.spec import parse_study

    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    outcome = run_study(parse_study(STN_STUDY, "stn.yaml"), storage, tracking)
    assert outcome.finished == 1 and outcome.best_values is not None
    # The optuna strategy samples the same hyperparameters into the same study: trials stand side by side.
    run_study(
        parse_study(
            STN_STUDY.replace("strategy: self_tuning", "strategy: optuna").replace(
                "self_tuning:\n  warmup_epochs: 1\n  train_steps: 1\n  hyper_lr: {low: 0.2, high: 0.3}\n", ""
            ),
            "tpe.yaml",
        ),
        storage,
        tracking,
        n_trials=2,
    )
    trials = optuna.load_study(study_name="stn-tiny", storage=storage).trials
    assert [sorted(k for k in t.params if k.startswith("hp.")) for t in trials] == [
        ["hp.cutout", "hp.dropout", "hp.noise"]
    ] * 2
    stn_trial = trials[0]
    assert 0.2 <= stn_trial.params["stn.hyper_lr"] <= 0.3 and isinstance(stn_trial.params["hp.cutout"], int)

    client = MlflowClient(tracking)
    run_id = stn_trial.user_attrs[RUN_ATTR]
    steps = 3 * 3  # 60 training images in batches of 20, three epochs
    for name in ("dropout", "noise", "cutout"):
        history = client.get_metric_history(run_id, f"hparam/{name}")
        assert [m.step for m in history] == list(range(steps))
        assert len(client.get_metric_history(run_id, f"hparam/{name}_scale")) == steps
        # Constant through the warm-up epoch, then moved by the hyper steps.
        assert len({m.value for m in history[:3]}) == 1 and history[-1].value != history[0].value
    # The final value (after the last hyper step) is the trial's parameter: moved from 0.2, inside the range.
    assert 0.0 < stn_trial.params["hp.dropout"] < 0.8 and stn_trial.params["hp.dropout"] != pytest.approx(0.2)
    schedule = (Path(client.download_artifacts(run_id, "self_tuning/schedule.csv", str(tmp_path)))).read_text()
    assert schedule.splitlines()[0].startswith("step,epoch,dropout,noise,cutout,dropout_scale")
    assert len(schedule.splitlines()) == steps + 1

    assert main(["replay", run_id, "--tracking-uri", tracking]) == 0
    replays = client.search_runs(
        [client.get_run(run_id).info.experiment_id], filter_string=f"tags.`sweeplab.replay_of` = '{run_id}'"
    )
    assert len(replays) == 1 and replays[0].info.status == "FINISHED" and "val_loss" in replays[0].data.metrics
    assert main(["replay", replays[0].info.run_id, "--tracking-uri", tracking]) == 2  # no schedule: clear error
