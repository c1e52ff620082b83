"""Test resolutions and time windows: generated arrays, the cache, the data module and the operator task."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pydantic import ValidationError
from torch import Tensor, nn

from sweeplab.data import DATASETS, OperatorData, TimeWindow, dataset_identity, load_dataset
from sweeplab.data.datamodule import OperatorDataModule
from sweeplab.datagen.burgers import BurgersParams, generate_burgers
from sweeplab.datagen.darcy import DarcyParams, generate_darcy
from sweeplab.datagen.navier_stokes import NavierStokesParams
from sweeplab_modules.registry import build_model
from sweeplab_modules.tasks.operator import OperatorLearning
from sweeplab_modules.training import TrainingConfig

DARCY = {"n_train": 6, "n_val": 2, "n_test": 3, "fine_resolution": 33, "resolution": 9, "seed": 4}
BURGERS = {"n_train": 2, "n_val": 1, "n_test": 2, "fine_resolution": 256, "resolution": 32, "dt": 0.05}
# 5 snapshots: 2 in, 3 out.
NAVIER_STOKES = {
    "n_train": 4,
    "n_val": 2,
    "n_test": 2,
    "fine_resolution": 32,
    "resolution": 16,
    "final_time": 1.0,
    "record_every": 0.2,
    "input_steps": 2,
    "dt": 0.01,
    "device": "cpu",
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trainer(**kwargs: object) -> pl.Trainer:
    return pl.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
        **kwargs,  # type: ignore[arg-type]
    )


# -- generated arrays at the test resolutions ---------------------------------------------------------------


def test_darcy_test_samples_at_each_resolution_subsample_one_fine_solve(tmp_path: Path) -> None:
    data = load_dataset("darcy", {**DARCY, "test_resolutions": [33, 17, 9]}, data_dir=tmp_path)
    assert list(data.test_at_resolution) == [33, 17, 9]
    fine_x, fine_y = data.test_at_resolution[33]
    assert fine_x.shape == fine_y.shape == (3, 1, 33, 33)
    for size, step in ((17, 2), (9, 4)):
        x, y = data.test_at_resolution[size]
        np.testing.assert_array_equal(x, fine_x[..., ::step, ::step])
        np.testing.assert_array_equal(y, fine_y[..., ::step, ::step])
    # The training resolution's entry is the test split itself, and the other splits are what they were.
    assert data.test_at_resolution[9][0] is data.x_test
    plain = load_dataset("darcy", DARCY, data_dir=tmp_path)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(data, key), getattr(plain, key))
    assert plain.test_at_resolution == {} and plain.time_window is None


def test_darcy_process_pool_gives_the_same_test_resolution_arrays(pool_sizes: list[int]) -> None:
    serial = generate_darcy(DarcyParams(**DARCY, test_resolutions=[33], workers=1))
    parallel = generate_darcy(DarcyParams(**DARCY, test_resolutions=[33], workers=2))
    assert pool_sizes == [2] and serial.keys() == parallel.keys() >= {"x_test_33", "y_test_33"}
    for key in serial:
        np.testing.assert_array_equal(serial[key], parallel[key])


def test_burgers_test_samples_at_a_finer_resolution_whatever_the_batches(tmp_path: Path) -> None:
    data = load_dataset("burgers", {**BURGERS, "test_resolutions": [128]}, data_dir=tmp_path)
    x, y = data.test_at_resolution[128]
    assert x.shape == y.shape == (2, 1, 128)
    np.testing.assert_array_equal(x[..., ::4], data.x_test)
    np.testing.assert_array_equal(y[..., ::4], data.y_test)
    # Batches of 2 of the 5 samples: one without test samples, one across validation and test, one of test only.
    batched = generate_burgers(BurgersParams(**BURGERS, test_resolutions=[128], batch_size=2))
    np.testing.assert_array_equal(batched["y_test_128"], y)
    np.testing.assert_array_equal(batched["x_val"], data.x_val)


def test_navier_stokes_test_samples_at_finer_and_coarser_resolutions(tmp_path: Path) -> None:
    data = load_dataset("navier_stokes", {**NAVIER_STOKES, "test_resolutions": [32, 8]}, data_dir=tmp_path)
    (fine_x, fine_y), (coarse_x, coarse_y) = data.test_at_resolution[32], data.test_at_resolution[8]
    assert fine_x.shape == (2, 2, 32, 32) and fine_y.shape == (2, 3, 32, 32) and coarse_y.shape == (2, 3, 8, 8)
    np.testing.assert_array_equal(fine_y[..., ::2, ::2], data.y_test)
    np.testing.assert_array_equal(fine_x[..., ::4, ::4], coarse_x)


@pytest.mark.parametrize(
    ("model", "params"),
    [
        (DarcyParams, {"test_resolutions": [100]}),
        (DarcyParams, {"test_resolutions": [141, 141]}),
        (BurgersParams, {"test_resolutions": [1000]}),
        (NavierStokesParams, {"test_resolutions": [48]}),
        (NavierStokesParams, {"test_resolutions": [1]}),
    ],
)
def test_test_resolutions_must_subsample_the_fine_grid(model: type, params: dict) -> None:
    with pytest.raises(ValidationError, match="not a subsample|more than once"):
        model(**params)


def test_no_test_resolutions_keeps_the_cache_key_of_files_written_before_they_existed() -> None:
    # The fields added later that leave the identity alone at their defaults (test_resolutions, dcdm_model).
    params = DarcyParams(**DARCY).model_dump(mode="json", exclude={"workers", "test_resolutions", "dcdm_model"})
    canonical = json.dumps({"name": "darcy", "params": params, "version": "1"}, sort_keys=True, separators=(",", ":"))
    before = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert dataset_identity("darcy", DARCY) == dataset_identity("darcy", {**DARCY, "test_resolutions": []}) == before
    assert dataset_identity("darcy", {**DARCY, "test_resolutions": [17]}) != before


def test_a_missing_test_resolution_array_is_regenerated(tmp_path: Path) -> None:
    params = {**DARCY, "test_resolutions": [17]}
    first = load_dataset("darcy", params, data_dir=tmp_path)
    (path,) = tmp_path.glob("darcy-*.npz")
    with np.load(path) as archive:
        kept = {key: archive[key] for key in archive.files if key != "x_test_17"}
    np.savez(path, **kept)
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = load_dataset("darcy", params, data_dir=tmp_path)
    np.testing.assert_array_equal(again.test_at_resolution[17][0], first.test_at_resolution[17][0])


# -- time windows --------------------------------------------------------------------------------------------


def test_window_modes_share_the_stored_data_and_set_the_model_channels(tmp_path: Path) -> None:
    entry = DATASETS["navier_stokes"]
    layouts = {}
    for extra in ({}, {"mode": "autoregressive"}, {"mode": "autoregressive", "step": 2, "teacher_forcing": True}):
        params = NavierStokesParams(**NAVIER_STOKES, **extra)
        layouts[params.mode + str(params.step)] = (entry.channels(params), entry.model_channels(params))
        data = load_dataset("navier_stokes", {**NAVIER_STOKES, **extra}, data_dir=tmp_path)
        assert data.time_window == params.time_window
    assert len(list(tmp_path.glob("navier_stokes-*.npz"))) == 1
    assert layouts == {
        "all_at_once1": ((2, 3), (2, 3)),
        "autoregressive1": ((2, 3), (2, 1)),
        "autoregressive2": ((2, 3), (2, 2)),
    }
    assert NavierStokesParams(**NAVIER_STOKES, mode="autoregressive", step=2, teacher_forcing=True).time_window == (
        TimeWindow(input_steps=2, step=2, training="teacher_forcing")
    )


@pytest.mark.parametrize("bad", [{"step": 2}, {"teacher_forcing": True}, {"mode": "autoregressive", "step": 4}])
def test_window_options_are_checked(bad: dict) -> None:
    with pytest.raises(ValidationError, match="autoregressive only|exceeds"):
        NavierStokesParams(**NAVIER_STOKES, **bad)


class _RepeatLast(nn.Module):
    """Predicts the last ``step`` input snapshots again: a model whose rollout is known exactly."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        return x[:, -self.step :] + 0.0 * self.unused


def _constant_trajectories(snapshots: int, input_steps: int) -> tuple[Tensor, Tensor]:
    # Snapshot k (1-based) of sample b is the constant field (b + 1) * k, so every ratio below is exact.
    values = torch.arange(1, 3)[:, None] * torch.arange(1, snapshots + 1)[None, :]
    fields = values[:, :, None, None].float().expand(-1, -1, 4, 4)
    return fields[:, :input_steps].contiguous(), fields[:, input_steps:].contiguous()


def _window_task(window: TimeWindow, loss: str = "rel_l2") -> OperatorLearning:
    task = OperatorLearning(_RepeatLast(window.step), TrainingConfig(loss=loss), window.input_steps, window.step)
    task.time_window = window
    return task


def test_rollout_feeds_each_prediction_back_into_the_window() -> None:
    x, y = _constant_trajectories(snapshots=15, input_steps=10)
    trajectory = torch.cat([x, y], dim=1)
    task = _window_task(TimeWindow(input_steps=10, step=2, training="rollout"))
    task.input_normalizer.fit(trajectory, pooled=True)
    task.output_normalizer.fit(trajectory, pooled=True)
    # Repeating the last two snapshots: 9, 10, 9, 10, 9 (times the sample's factor), truncated to 5.
    expected = x[:, [8, 9, 8, 9, 8]]
    torch.testing.assert_close(task.rollout(x, horizon=5), expected)


def test_rollout_and_teacher_forcing_losses_have_known_values() -> None:
    x, y = _constant_trajectories(snapshots=14, input_steps=10)
    rollout = _window_task(TimeWindow(input_steps=10, step=1, training="rollout"))
    forced = _window_task(TimeWindow(input_steps=10, step=1, training="teacher_forcing"))
    # Rollout predicts snapshot 10 four times for targets 11..14: mean over calls of (k - 10) / k.
    expected_rollout = sum((k - 10) / k for k in range(11, 15)) / 4
    assert rollout._training_loss(x, y).item() == pytest.approx(expected_rollout, rel=1e-5)
    # Teacher forcing predicts snapshot k - 1 for target k from the true window: mean of 1 / k.
    assert forced._training_loss(x, y).item() == pytest.approx(sum(1 / k for k in range(11, 15)) / 4, rel=1e-5)
    # Validation scores the whole rolled-out trajectory: ||(1, 2, 3, 4)|| / ||(11, 12, 13, 14)||.
    expected_trajectory = math.sqrt(1 + 4 + 9 + 16) / math.sqrt(121 + 144 + 169 + 196)
    assert rollout.shared_step((x, y), "val").item() == pytest.approx(expected_trajectory, rel=1e-5)


def test_pooled_normaliser_uses_one_mean_and_deviation_for_every_channel() -> None:
    x, y = _constant_trajectories(snapshots=6, input_steps=2)
    trajectory = torch.cat([x, y], dim=1)
    task = _window_task(TimeWindow(input_steps=2, step=1, training="rollout"))
    task.input_normalizer.fit(trajectory, pooled=True)
    torch.testing.assert_close(task.input_normalizer.mean, trajectory.mean().expand(2))
    torch.testing.assert_close(task.input_normalizer.std, trajectory.std().expand(2))


# -- the data module and the task in Lightning ----------------------------------------------------------------


def test_test_loaders_cover_every_resolution_with_batches_scaled_to_the_grid() -> None:
    rng = np.random.default_rng(0)

    def arrays(samples: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        return tuple(rng.standard_normal((samples, 1, size, size)).astype(np.float32) for _ in range(2))  # type: ignore[return-value]

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = arrays(8, 8), arrays(4, 8), arrays(40, 8)
    data = OperatorData(x_train, y_train, x_val, y_val, x_test, y_test, "id", test_at_resolution={16: arrays(40, 16)})
    module = OperatorDataModule(data, batch_size=4, eval_batch_size=20)
    main, fine = module.test_dataloader()
    assert [len(x) for x, _ in main] == [20, 20]
    assert [len(x) for x, _ in fine] == [5] * 8  # four times the points per sample: a quarter of the batch


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_task_logs_every_metric_at_every_test_resolution(tmp_path: Path, precision: str) -> None:
    data = load_dataset("darcy", {**DARCY, "test_resolutions": [17, 33]}, data_dir=tmp_path)
    torch.manual_seed(0)
    model = build_model("fno2d", 1, 1, width=6, modes=3, n_layers=2, padding=0, projection_width=8)
    task = OperatorLearning(model, TrainingConfig(loss="rel_h1", batch_size=3, lr=5e-3), 1, 1)
    trainer = _trainer(max_epochs=3, precision=precision)
    trainer.fit(task, datamodule=OperatorDataModule(data, batch_size=3))
    metrics = {name: value.item() for name, value in trainer.callback_metrics.items()}
    trainer.test(task, datamodule=OperatorDataModule(data, batch_size=3), verbose=False)
    metrics |= {name: value.item() for name, value in trainer.callback_metrics.items()}
    expected = {f"{stage}_{name}" for stage in ("val", "test") for name in ("loss", "rel_l2", "rel_h1")}
    expected |= {f"test_{name}_{size}" for name in ("rel_l2", "rel_h1") for size in (17, 33)}
    assert expected | {"train_loss"} == set(metrics)
    assert all(math.isfinite(value) and value > 0 for value in metrics.values())
    assert metrics["val_loss"] == metrics["val_rel_h1"]  # the H1 loss is what was trained and reported
    # Scored in physical units against the fine solve: a different number from the training grid's.
    assert metrics["test_rel_l2_33"] != metrics["test_rel_l2"]


def test_bf16_training_keeps_the_spectral_transforms_in_float32(tmp_path: Path) -> None:
    from sweeplab_modules.layers.spectral import SpectralConv

    data = load_dataset("darcy", DARCY, data_dir=tmp_path)
    spectrum_dtypes: set[torch.dtype] = set()
    results = {}
    original = SpectralConv._truncated_rfft

    def recording(self: SpectralConv, x: Tensor, grid_shape: tuple[int, ...]) -> Tensor:
        spectrum = original(self, x, grid_shape)
        spectrum_dtypes.add(spectrum.dtype)
        return spectrum

    for precision in ("32-true", "bf16-mixed"):
        torch.manual_seed(0)
        model = build_model("fno2d", 1, 1, width=6, modes=3, n_layers=2, padding=0, projection_width=8)
        task = OperatorLearning(model, TrainingConfig(batch_size=3), 1, 1)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(SpectralConv, "_truncated_rfft", recording)
            trainer = _trainer(max_epochs=1, precision=precision)
            trainer.fit(task, datamodule=OperatorDataModule(data, batch_size=3))
        results[precision] = trainer.callback_metrics["val_rel_l2"].item()
    assert spectrum_dtypes == {torch.complex64}
    assert results["bf16-mixed"] == pytest.approx(results["32-true"], rel=5e-2)


@pytest.mark.parametrize("training", ["rollout", "teacher_forcing"])
def test_autoregressive_navier_stokes_trains_and_reports_the_rollout(tmp_path: Path, training: str) -> None:
    params = {**NAVIER_STOKES, "mode": "autoregressive", "teacher_forcing": training == "teacher_forcing"}
    params["test_resolutions"] = [32]
    data = load_dataset("navier_stokes", params, data_dir=tmp_path)
    in_channels, out_channels = DATASETS["navier_stokes"].model_channels(NavierStokesParams(**params))
    torch.manual_seed(0)
    model = build_model("fno2d", in_channels, out_channels, width=6, modes=3, n_layers=2, padding=0)
    task = OperatorLearning(model, TrainingConfig(batch_size=2, lr=5e-3), in_channels, out_channels)
    trainer = _trainer(max_epochs=2)
    datamodule = OperatorDataModule(data, batch_size=2)
    trainer.fit(task, datamodule=datamodule)
    assert math.isfinite(trainer.callback_metrics["val_rel_l2"].item())
    trainer.test(task, datamodule=datamodule, verbose=False)
    metrics = {name: value.item() for name, value in trainer.callback_metrics.items()}
    assert {"test_rel_l2", "test_rel_l2_32"} <= set(metrics)
    # The reported number is the error of the whole 3-snapshot rollout.
    x_test, y_test = datamodule.splits["test"]
    with torch.no_grad():
        rollout = task.rollout(x_test, horizon=3)
    assert rollout.shape == y_test.shape
    error = torch.linalg.vector_norm((rollout - y_test).flatten(1), dim=1) / torch.linalg.vector_norm(
        y_test.flatten(1), dim=1
    )
    assert metrics["test_rel_l2"] == pytest.approx(error.mean().item(), rel=1e-4)


@pytest.mark.slow
def test_a_study_records_the_test_resolution_metrics_and_the_data_set_in_mlflow(tmp_path: Path) -> None:
    from conftest import TINY_STUDY, write_study
    from mlflow.tracking import MlflowClient

    from sweeplab.run import run_study
    from sweeplab.spec import load_study

    text = TINY_STUDY.replace("seed: 0}", "seed: 0, test_resolutions: [33]}").replace("n_trials: 3", "n_trials: 1")
    study = load_study(write_study(tmp_path, text))
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    run_study(study, storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=tracking)
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    (parent,) = [r for r in runs if r.data.tags["sweeplab.role"] == "study"]
    (child,) = [r for r in runs if r.data.tags["sweeplab.role"] == "trial"]
    identity = dataset_identity("darcy", study.data_params)
    assert parent.data.params["data.identity"] == child.data.params["data.identity"] == identity
    assert parent.data.params["data.test_resolutions"] == "[33]" and parent.data.params["data.resolution"] == "17"
    assert {"test_rel_l2", "test_rel_l2_33", "test_rel_h1_33", "val_rel_h1"} <= set(child.data.metrics)
    assert set(study.logged_metrics) <= set(child.data.metrics)
