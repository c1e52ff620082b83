"""muP and muTransfer: the coordinate check (activation scales flat across widths under muP, growing under the
standard parametrization) for FNO-2D and an MLP, the per-layer rules, the study checks, and strategy transfer end to
end (proxy trials, then target runs recorded as child runs, resumed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from conftest import write_study
from mlflow.tracking import MlflowClient

from sweeplab.cli import main
from sweeplab.record import (
    PARENT_RUN_ATTR,
    PARENT_RUN_TAG,
    ROLE_TAG,
    RUN_ATTR,
    TRANSFER_OF_TAG,
    TRANSFER_ROLE,
    TRANSFER_TARGET_TAG,
    finished_trials,
)
from sweeplab.run import run_study
from sweeplab.spec import StudyError, load_study
from sweeplab_modules.coord_check import coordinate_check, growth_ratios
from sweeplab_modules.operators.fno import FNO1d, FNO2d
from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.training import TrainingConfig

WIDTHS = [8, 16, 32, 64, 128]


# -- the coordinate check -------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize(("model", "seeds"), [("fno2d", range(8)), ("mlp", range(16))])
def test_coordinate_check_is_flat_under_mup_and_grows_under_the_standard_parametrization(model: str, seeds) -> None:
    standard = growth_ratios(coordinate_check(model, "standard", WIDTHS, seeds=seeds))
    mup = growth_ratios(coordinate_check(model, "mup", WIDTHS, seeds=seeds))
    # Measured (width 128 over width 8, bench/coord_check.py): standard, FNO-2D output x15, MLP output x5; muP
    # within 0.91 .. 1.16 (FNO-2D) and 0.96 .. 1.1 (MLP).
    assert max(standard.values()) > 3.0, standard
    assert all(1 / 1.6 < ratio < 1.6 for ratio in mup.values()), mup


# -- the rules ------------------------------------------------------------------------------------------------------
def _fno(width: int, parametrization: str, spatial: type = FNO2d) -> torch.nn.Module:
    torch.manual_seed(0)
    return spatial(1, 1, width=width, modes=4, parametrization=parametrization, base_width=8)


def test_mup_at_the_base_width_is_the_standard_network() -> None:
    standard, mup = _fno(8, "standard"), _fno(8, "mup")
    for (name, a), b in zip(standard.state_dict().items(), mup.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    groups = SweepTask(mup, TrainingConfig(lr=1e-3)).make_optimizer().param_groups
    assert [group["lr"] for group in groups] == [1e-3]  # every multiplier is 1


@pytest.mark.parametrize("spatial", [FNO1d, FNO2d])
def test_adam_learning_rates_and_initialisation_follow_the_roles_of_the_layers(spatial: type) -> None:
    width, lr = 32, 1e-3  # 4 x the base width
    model = _fno(width, "mup", spatial)
    rates = {}
    for group in SweepTask(model, TrainingConfig(optimizer="adamw", lr=lr)).make_optimizer().param_groups:
        rates.update({id(p): group["lr"] for p in group["params"]})
    for name, parameter in model.named_parameters():
        hidden = name.startswith("fourier_layers") and name.endswith("weight")
        readout = name == "projection.0.weight"
        # Hidden and readout weights: lr * base / width; input weights, biases, the last (finite) layer: lr.
        assert rates[id(parameter)] == pytest.approx(lr / 4 if hidden or readout else lr), name
    standard = _fno(width, "standard", spatial)
    # Spectral weights: the reference init uniform [0, 1 / (in * out)) times width / base: [0, 1 / (in * base)).
    spectral = model.fourier_layers[0].spectral.weight.detach()
    assert torch.allclose(spectral, 4 * standard.fourier_layers[0].spectral.weight)
    assert float(spectral.max()) < 1 / (width * 8) and float(spectral.max()) > 0.9 / (width * 8)
    # The readout: standard std / sqrt(width / base) (variance ~ 1 / fan_in^2); a hidden bias: times sqrt(4).
    assert torch.allclose(model.projection[0].weight, standard.projection[0].weight / 2)
    assert torch.allclose(model.fourier_layers[1].pointwise.bias, 2 * standard.fourier_layers[1].pointwise.bias)
    assert torch.equal(model.lift.weight, standard.lift.weight)


@pytest.mark.parametrize("init", ["default", "criticality"])
def test_deeponet_scales_branch_and_trunk_each_by_its_own_width(init: str) -> None:
    from sweeplab_modules.operators.deeponet import DeepONet1d

    sizes = {"branch_width": 64, "trunk_width": 32, "branch_layers": 3, "trunk_layers": 2, "n_basis": 16}
    torch.manual_seed(0)
    standard = DeepONet1d(1, 1, init=init, activation="relu", **sizes)
    torch.manual_seed(0)
    mup = DeepONet1d(1, 1, init=init, activation="relu", parametrization="mup", base_width=16, **sizes)
    # branch 128 sensors -> 64 -> 64 -> 16: hidden branch.2, readout branch.4 (ratio 4); trunk 1 -> 32 -> 16:
    # readout trunk.2 (ratio 2); the input layers keep lr and init.
    assert mup.learning_rate_scales == {"branch.2.weight": 0.25, "branch.4.weight": 0.25, "trunk.2.weight": 0.5}
    assert torch.equal(mup.branch[2].weight, standard.branch[2].weight)
    assert torch.allclose(mup.branch[4].weight, standard.branch[4].weight / 2)
    assert torch.allclose(mup.trunk[2].weight, standard.trunk[2].weight / 2**0.5)
    assert torch.equal(mup.trunk[0].weight, standard.trunk[0].weight)


def test_an_optimiser_over_layers_that_replaced_the_scaled_ones_is_refused() -> None:
    model = _fno(16, "mup")
    model.fourier_layers[0].pointwise = torch.nn.Sequential(model.fourier_layers[0].pointwise)  # a wrapping conversion
    with pytest.raises(ValueError, match="no longer has the parameters muP scaled: fourier_layers.0.pointwise.weight"):
        SweepTask(model, TrainingConfig()).make_optimizer()


def test_a_model_wrapped_for_regularisation_keeps_its_mup_learning_rates() -> None:
    from sweeplab_modules.stn import HyperContext, OnlineHyperparameter, regularised

    noise = {"noise": OnlineHyperparameter(apply="input_noise", high=0.5, initial=0.1)}
    wrapped = regularised(_fno(32, "mup"), noise, HyperContext())
    groups = SweepTask(wrapped, TrainingConfig(lr=1e-3)).make_optimizer().param_groups
    rates = {id(p): group["lr"] for group in groups for p in group["params"]}
    assert rates[id(wrapped.model.fourier_layers[0].pointwise.weight)] == pytest.approx(1e-3 / 4)
    assert rates[id(wrapped.model.lift.weight)] == pytest.approx(1e-3)


def test_mup_needs_a_base_width() -> None:
    with pytest.raises(ValueError, match="parametrization mup needs base_width"):
        FNO2d(1, 1, width=16, modes=4, parametrization="mup")
    with pytest.raises(ValueError, match="parametrization must be one of"):
        FNO2d(1, 1, width=16, modes=4, parametrization="ntk", base_width=8)


# -- the study ------------------------------------------------------------------------------------------------------
TRANSFER_STUDY = """\
name: transferred
objective: {metric: val_rel_l2, direction: minimize}
data:
  name: darcy
  params: {fine_resolution: 33, resolution: 17, n_train: 16, n_val: 8, n_test: 8, seed: 0}
models:
  - name: fno2d
    params: {n_layers: 2, padding: 0, projection_width: 8, modes: 3, parametrization: mup, base_width: 4}
search: {lr: {low: 1.0e-3, high: 1.0e-1, log: true}, batch_size: 8}
trainer: {max_epochs: 1, num_threads: 1, seed: 3}
sampler: random
strategy: transfer
transfer: {proxy: 4, targets: [16, 8]}
budget: {n_trials: 3}
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("base_width: 4}", "base_width: 0}", "models[0].params.base_width: must be an integer >= 1, got 0"),
        (", base_width: 4}", "}", "models[0].params: parametrization mup needs base_width"),
        ("batch_size: 8}", "batch_size: 8, optimizer: sgd}", "search.optimizer: fno2d has parametrization mup"),
        (
            "budget:",
            "finetune: {max_epochs: 1, search: {optimizer: {choices: [adam, sgd]}}}\nbudget:",
            "finetune.search.optimizer: fno2d has parametrization mup, whose learning-rate rules are Adam's (adam, "
            "adamw); got optimizer 'sgd'",
        ),
        (
            ", base_width: 4}",
            "}\n    search: {base_width: {low: 0, high: 8}}",
            "models[0].search.base_width: must be an integer >= 1, got 0",
        ),
        ("modes: 3,", "modes: 3, width: 4,", "models[0].params.width: strategy transfer sets width"),
        ("transfer: {proxy: 4, targets: [16, 8]}", "", "strategy: strategy transfer needs a transfer block"),
        ("strategy: transfer\n", "", "transfer: only used with strategy: transfer"),
        ("targets: [16, 8]", "targets: []", "transfer.targets: List should have at least 1 item"),
        ("{proxy: 4,", "{parameter: depth, proxy: 4,", "transfer.parameter: fno2d has no constructor parameter"),
        (  # the targets are checked against the grids as the proxy is: modes 16 does not fit 17 points
            TRANSFER_STUDY[TRANSFER_STUDY.index("modes: 3") : TRANSFER_STUDY.index("budget:")],
            TRANSFER_STUDY[TRANSFER_STUDY.index("parametrization: mup") : TRANSFER_STUDY.index("transfer:")]
            + "transfer: {parameter: modes, proxy: 3, targets: [4, 16]}\n",
            "transfer.targets[1]: modes 16: ",
        ),
        (
            "strategy: transfer\ntransfer: {proxy: 4, targets: [16, 8]}\n",
            "strategy: self_tuning\nhyperparameters:\n  noise: {apply: input_noise, low: 0, high: 0.5, initial: 0.1}\n",
            "models[0].params.parametrization: parametrization mup cannot be self-tuned",
        ),
    ],
)
def test_validate_refuses_what_mup_and_transfer_cannot_run(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in TRANSFER_STUDY
    path = write_study(tmp_path, TRANSFER_STUDY.replace(old, new))
    with pytest.raises(StudyError) as raised:
        load_study(path)
    assert message in str(raised.value), str(raised.value)
    assert f"{path}:" in str(raised.value)  # file and line


def test_a_searched_base_width_within_bounds_is_accepted(tmp_path: Path) -> None:
    text = TRANSFER_STUDY.replace(", base_width: 4}", "}\n    search: {base_width: {low: 2, high: 8}}")
    study = load_study(write_study(tmp_path, text))
    assert [d.target for d in study.models[0].dimensions] == ["base_width"]


def test_validate_accepts_a_transfer_study_without_importing_torch(tmp_path: Path) -> None:
    path = write_study(tmp_path, TRANSFER_STUDY)
    script = (
        "import sys; from sweeplab.commands import validate_command; "
        f"status = validate_command([{str(path)!r}]); print(status, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 False"
    assert "fno2d (0 searched); 1 shared dimensions; transfer: width 4 -> 16, 8" in done.stdout


def _transfer_runs(tracking_uri: str, storage: str) -> list:
    parent = optuna.load_study(study_name="transferred", storage=storage).user_attrs[PARENT_RUN_ATTR]
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("transferred")
    query = f"tags.`{PARENT_RUN_TAG}` = '{parent}' AND tags.`{ROLE_TAG}` = '{TRANSFER_ROLE}'"
    return client.search_runs([experiment.experiment_id], query)


@pytest.mark.usefixtures("one_torch_thread")
def test_transfer_tunes_at_the_proxy_and_trains_the_targets_with_its_best_hyperparameters(
    tmp_path: Path, capsys
) -> None:
    study_file = write_study(tmp_path, TRANSFER_STUDY)
    storage, tracking_uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    run_study(load_study(study_file), storage=storage, tracking_uri=tracking_uri)

    trials = optuna.load_study(study_name="transferred", storage=storage).get_trials()
    assert len(trials) == 3 and finished_trials(trials) == 3  # the targets are not trials
    client = MlflowClient(tracking_uri)
    for trial in trials:  # the search ran at the proxy width
        assert client.get_run(trial.user_attrs[RUN_ATTR]).data.params["model.width"] == "4"
    best = min(trials, key=lambda t: t.value)
    runs = _transfer_runs(tracking_uri, storage)
    assert sorted(int(run.data.tags[TRANSFER_TARGET_TAG]) for run in runs) == [8, 16]
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags[TRANSFER_OF_TAG] == str(best.number)
        assert run.data.params["model.width"] == run.data.tags[TRANSFER_TARGET_TAG]
        assert float(run.data.params["lr"]) == pytest.approx(best.params["lr"])  # transferred as found
        assert run.data.params["model.base_width"] == "4" and "test_rel_l2" in run.data.metrics

    # A target cut short is trained again on resume; the finished one and the trials are not.
    cut = next(run for run in runs if run.data.tags[TRANSFER_TARGET_TAG] == "16")
    client.set_terminated(cut.info.run_id, "KILLED")
    run_study(load_study(study_file), storage=storage, tracking_uri=tracking_uri)
    assert len(optuna.load_study(study_name="transferred", storage=storage).get_trials()) == 3
    new = [run for run in _transfer_runs(tracking_uri, storage) if run.info.run_id not in {r.info.run_id for r in runs}]
    assert [(run.data.tags[TRANSFER_TARGET_TAG], run.info.status) for run in new] == [("16", "FINISHED")]

    # compare reports the targets: the latest run of each, its validation and test values.
    stores = ["--storage", storage, "--tracking-uri", tracking_uri]
    capsys.readouterr()
    assert main(["compare", str(study_file), *stores, "--format", "json"]) == 0
    reported = json.loads(capsys.readouterr().out)["transfers"]["transferred"]
    assert [(r["architecture"], r["trial"], r["target"]) for r in reported] == [
        ("fno2d", best.number, t) for t in (8, 16)
    ]
    assert reported[1]["metrics"]["test_rel_l2"] == pytest.approx(new[0].data.metrics["test_rel_l2"])
    assert main(["compare", str(study_file), *stores]) == 0
    assert "transferred: transfer targets" in capsys.readouterr().out
    assert main(["compare", str(study_file), *stores, "--format", "html", "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report-transferred.html").read_text()
    assert "Transfer targets" in report and "test_rel_l2" in report


@pytest.mark.usefixtures("one_torch_thread")
def test_a_transfer_trial_trained_with_regularisation_hyperparameters_loads(tmp_path: Path) -> None:
    import sweeplab

    noise = "hyperparameters:\n  noise: {apply: input_noise, low: 0, high: 0.5, initial: 0.1}\n"
    text = TRANSFER_STUDY.replace("targets: [16, 8]", "targets: [8]").replace("n_trials: 3", "n_trials: 1") + noise
    storage, tracking_uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    run_study(load_study(write_study(tmp_path, text)), storage=storage, tracking_uri=tracking_uri)
    model = sweeplab.load_model("models:/transferred@best", tracking_uri)
    assert model.description.strategy == "optuna"  # trained as an optuna trial: the regularisation wrapper
    assert model(torch.rand(2, 1, 17, 17)).shape == (2, 1, 17, 17)
