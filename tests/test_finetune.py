"""Two stages in one trial (``finetune:``): the spec and its checks, the sampled plan, and a real run whose second
stage trains only the parameters it names, with its own loss and settings, logged under ``finetune/``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import pytorch_lightning as pl
import torch
from conftest import bare_trainer, write_study
from mlflow.tracking import MlflowClient

from sweeplab.data.datamodule import InMemoryBatches
from sweeplab.record import CHECKPOINT_ARTIFACT, FINETUNE_PREFIX, REASON_ATTR, RUN_ATTR
from sweeplab.run import run_study
from sweeplab.spec import StudyError, load_study, parse_study
from sweeplab.training._callbacks import PruningCallback
from sweeplab_modules.registry import build_model
from sweeplab_modules.tasks.assimilation import StateAssimilation
from sweeplab_modules.tasks.base import SweepTask
from sweeplab_modules.tasks.classification import ClassIncrementalLearning
from sweeplab_modules.tasks.contrastive import ContrastiveLearning
from sweeplab_modules.tasks.operator import OperatorLearning
from sweeplab_modules.tasks.proximal import ProximalDenoising
from sweeplab_modules.training import TrainingConfig

# FNO-2D on tiny Darcy data; after one epoch (not the trainer's two), the second stage fine-tunes the projection
# alone for two more with another loss and lr.
STAGE = """\
finetune:
  after_epochs: 1
  max_epochs: 2
  trainable: [projection]
  search: {loss: rel_h1, lr: 5.0e-2}
"""
STUDY = """\
name: two-stage
objective: {metric: finetune/val_rel_l2}
data:
  name: darcy
  params: {fine_resolution: 33, resolution: 17, n_train: 8, n_val: 4, n_test: 4, seed: 0}
models:
  - {name: fno2d, params: {n_layers: 2, padding: 0, projection_width: 8, width: 4, modes: 3}}
search: {lr: 1.0e-2, batch_size: 4}
{stage}trainer: {max_epochs: 2, num_threads: 1}
sampler: random
budget: {n_trials: 1}
""".replace("{stage}", STAGE)


def issues_of(text: str) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(StudyError) as raised:
        parse_study(text, "two.yaml")
    return {".".join(map(str, issue.location)): (issue.line, issue.message) for issue in raised.value.issues}


def test_a_bad_stage_is_reported_with_line_and_field() -> None:
    text = (
        STUDY.replace("finetune/val_rel_l2", "val_rel_l2")
        .replace("max_epochs: 2\n  trainable", "max_epochs: 0\n  trainable")
        .replace("after_epochs: 1", "after_epochs: {low: 3, high: 1}")
        .replace("[projection]", "[projection, 2nd, projecton.0]")
        .replace("loss: rel_h1", "loss: vorticity_residual, momentum: {low: 0.5, high: 2.0}, lrr: 1")
    )
    issues = issues_of(text)
    assert issues["objective.metric"][0] == 2 and "finetune/val_rel_l2" in issues["objective.metric"][1]
    assert issues["finetune.after_epochs.low"][0] == 10 and issues["finetune.max_epochs"][0] == 11
    assert issues["finetune.trainable.1"] == (12, "'2nd' is not a parameter or module name")
    assert issues["finetune.trainable.2"][1] == (
        "fno2d has no module or parameter 'projecton.0' (did you mean 'projection'?)"
    )
    # Darcy states no equation for a residual; the stage's settings are checked like the first stage's.
    assert "states none" in issues["finetune.search.loss"][1] and issues["finetune.search.loss"][0] == 13
    assert "finetune.search.momentum.high" in issues and "unknown parameter" in issues["finetune.search.lrr"][1]


def test_a_stage_cannot_leak_the_test_split_or_join_regularisation_hyperparameters() -> None:
    assert "leaks the test set" in issues_of(STUDY.replace("val_rel_l2", "test_rel_l2"))["objective.metric"][1]
    regularised = STUDY + "hyperparameters:\n  noise: {apply: input_noise, low: 0.0, high: 0.5, initial: 0.1}\n"
    assert "one stage" in issues_of(regularised)["finetune"][1]


def test_the_stage_samples_its_own_settings_over_the_first_stages() -> None:
    text = (
        STUDY.replace("max_epochs: 2\n  trainable", "max_epochs: {low: 1, high: 4}\n  trainable")
        .replace("lr: 5.0e-2", "lr: {low: 1.0e-4, high: 1.0e-1, log: true}")
        .replace("after_epochs: 1", "after_epochs: {choices: [1, 5]}")
    )
    study = parse_study(text)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    plan = study.sample(trial)
    stage = plan.finetune
    assert set(trial.params) == {"model", "finetune.max_epochs", "finetune.after_epochs", "finetune.lr"}
    assert stage is not None and stage.max_epochs == trial.params["finetune.max_epochs"]
    assert (stage.after_epochs, stage.training.lr) == (
        trial.params["finetune.after_epochs"],
        trial.params["finetune.lr"],
    )
    assert (stage.training.loss, stage.training.batch_size, plan.training.loss) == ("rel_h1", 4, None)
    assert plan.flat_params()["finetune.trainable"] == "projection"


def _trained(tmp_path: Path, text: str) -> tuple[dict[str, float], dict[str, torch.Tensor], MlflowClient, str]:
    tmp_path.mkdir()
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    study = load_study(write_study(tmp_path, text))
    run_study(study, storage=storage, tracking_uri=tracking)
    (trial,) = optuna.load_study(study_name=study.name, storage=storage).get_trials()
    client = MlflowClient(tracking)
    run_id = trial.user_attrs[RUN_ATTR]
    checkpoint = client.download_artifacts(run_id, CHECKPOINT_ARTIFACT, str(tmp_path))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return {"value": trial.value, **client.get_run(run_id).data.metrics}, state, client, run_id


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_the_second_stage_trains_only_what_it_names_and_logs_under_its_prefix(tmp_path: Path) -> None:
    staged, after, client, run_id = _trained(tmp_path / "staged", STUDY)
    single = (
        STUDY.replace("finetune/val_rel_l2", "val_rel_l2")
        .replace(STAGE, "")
        .replace("max_epochs: 2,", "max_epochs: 1,")
    )
    _, before, _, _ = _trained(tmp_path / "single", single)
    # The same seed trains the same first stage; the second changed the projection and nothing else.
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("model.projection.") for name in changed), changed
    assert staged["value"] == staged["finetune/val_rel_l2"]
    assert {"val_rel_l2", "test_rel_l2", "finetune/test_rel_l2", "finetune/train_loss"} <= set(staged)
    # Its loss is rel_h1 (the first stage's rel_l2), and its curves continue the first stage's epochs.
    assert staged["finetune/val_loss"] == staged["finetune/val_rel_h1"] and staged["val_loss"] == staged["val_rel_l2"]
    assert [m.step for m in client.get_metric_history(run_id, "finetune/val_loss")] == [1, 2]
    (trial,) = optuna.load_study(study_name="two-stage", storage=f"sqlite:///{tmp_path}/staged/optuna.db").trials
    assert sorted(trial.intermediate_values) == [1, 2]  # the pruner's steps are MLflow's
    assert staged["epochs"] == 3


def test_validate_names_the_stage_without_importing_torch(tmp_path: Path) -> None:
    path = write_study(tmp_path, STUDY)
    script = (
        "import sys; from sweeplab.commands import validate_command; "
        f"status = validate_command([{str(path)!r}]); print(status, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 False"
    assert "a finetune stage (0 searched)" in done.stdout


class _Labelled(pl.LightningDataModule):
    """Twelve labelled vectors of three classes, every split the same: what a task's validation needs."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(12, 6, generator=generator)
        self.splits = {name: (x, torch.eye(3)[torch.arange(12) % 3]) for name in ("train", "val")}

    def val_dataloader(self) -> InMemoryBatches:
        return InMemoryBatches(*self.splits["val"], batch_size=6, shuffle=False)


@pytest.mark.usefixtures("one_torch_thread")
def test_every_metric_a_task_logs_takes_the_stage_prefix(tmp_path: Path) -> None:
    # The probe and k-NN accuracies are logged once per epoch, not as batch means: they too take the prefix.
    model = build_model("contrastive_mlp", 6, 3, width=8, depth=1, projection_dim=4)
    task = ContrastiveLearning(model, TrainingConfig(), in_channels=6, out_channels=3)
    task.continue_with(TrainingConfig(), FINETUNE_PREFIX, 1)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    (logged,) = trainer.validate(task, datamodule=_Labelled(), verbose=False)
    assert {"val_loss", "val_probe_pre", "val_probe_post", "val_knn_pre", "val_knn_post"} == {
        name.removeprefix(FINETUNE_PREFIX) for name in logged if name.startswith(FINETUNE_PREFIX)
    }
    assert not [name for name in logged if not name.startswith(FINETUNE_PREFIX)]


@pytest.mark.parametrize(
    ("task_class", "first", "then"),
    [
        (OperatorLearning, "rel_l2", "mse"),
        (StateAssimilation, "rel_l2", "mse"),
        (ContrastiveLearning, "simclr", "supcon"),
        (ClassIncrementalLearning, "cross_entropy", "hoc"),
        (ProximalDenoising, "l2", "proximal_matching"),
    ],
)
def test_a_later_stage_trains_with_its_own_loss(task_class: type[SweepTask], first: str, then: str) -> None:
    task = task_class(torch.nn.Linear(2, 2), TrainingConfig(loss=first), in_channels=2, out_channels=2)
    task.continue_with(TrainingConfig(loss=then), FINETUNE_PREFIX, 1)
    assert task.loss_name == then
    if hasattr(task, "loss_function"):  # the loss computed is the new one: the mean squared error of 1 is 1
        assert float(task.loss_function(torch.ones(1, 2, 2), torch.zeros(1, 2, 2))) == 1.0
    with pytest.raises(ValueError, match="loss must be one of"):
        task.continue_with(TrainingConfig(loss="l3"), FINETUNE_PREFIX, 1)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_trainable_name_the_model_lacks_fails_the_trial_before_it_trains(tmp_path: Path) -> None:
    # The checker reads the first part (an attribute of the class); the index is only known of the built model.
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    study = load_study(write_study(tmp_path, STUDY.replace("[projection]", "[projection.9]")))
    run_study(study, storage=storage, tracking_uri=tracking)
    (trial,) = optuna.load_study(study_name=study.name, storage=storage).get_trials()
    assert trial.state == optuna.trial.TrialState.FAIL
    assert "projection.9 names no parameter of FNO" in trial.user_attrs[REASON_ATTR]
    assert not MlflowClient(tracking).get_run(trial.user_attrs[RUN_ATTR]).data.metrics  # no epoch was trained


def test_a_physics_loss_needs_two_snapshots_per_model_call() -> None:
    # The residual differentiates in time across the snapshots of one call: autoregressive step 1 gives one.
    text = (Path(__file__).parents[1] / "studies" / "navier_stokes_sfno.yaml").read_text()
    autoregressive = text.replace("    seed: 0\n\nmodels", "    seed: 0\n    mode: autoregressive\n\nmodels")
    with pytest.raises(StudyError) as raised:
        parse_study(autoregressive, "sfno.yaml")
    (issue,) = [issue for issue in raised.value.issues if issue.location == ("finetune", "search", "loss")]
    lines = autoregressive.splitlines()
    line = 1 + next(index for index, row in enumerate(lines) if "loss: vorticity_residual" in row)
    assert issue.line == line and "2 snapshots per model call, the data give 1" in issue.message
    two_steps = autoregressive.replace("mode: autoregressive", "mode: autoregressive\n    step: 2")
    assert parse_study(two_steps, "sfno.yaml").finetune is not None


class _Regression(SweepTask):
    def shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        loss = ((self.model(x) - y) ** 2).mean()
        self.log_epoch_mean(f"{stage}_loss", loss, len(x))
        return loss


@pytest.mark.usefixtures("one_torch_thread")
def test_a_later_stage_reports_to_optuna_at_the_trials_epochs() -> None:
    # After 3 epochs of the first stage, the second's epochs 0 and 1 are the trial's 3 and 4, as in MLflow.
    trial = optuna.create_study().ask()
    task = _Regression(torch.nn.Linear(1, 1), TrainingConfig())
    task.continue_with(TrainingConfig(), FINETUNE_PREFIX, 3)
    x = torch.linspace(0, 1, 8).unsqueeze(1)
    batches = InMemoryBatches(x, 2 * x, batch_size=4, shuffle=False)
    pruning = PruningCallback(trial, FINETUNE_PREFIX + "val_loss")
    bare_trainer(callbacks=[pruning]).fit(task, train_dataloaders=batches, val_dataloaders=batches)
    assert sorted(trial.storage.get_trial(trial._trial_id).intermediate_values) == [3, 4]
