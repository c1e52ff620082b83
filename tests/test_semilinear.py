"""KdV and Kuramoto-Sivashinsky generators against known solutions and invariants, the observation model, and the
semilinear neural operator (NODA): presets, exact skipping of the correction without observations, the task's
sensor-count scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sweeplab.datagen.semilinear import (
    KdVParams,
    KuramotoSivashinskyParams,
    etdrk4_solve,
    generate_kdv,
    generate_kuramoto_sivashinsky,
    kdv_operators,
    kdv_soliton,
    kuramoto_sivashinsky_operators,
)
from sweeplab_modules.losses import relative_l2
from sweeplab_modules.registry import MODELS, build_model
from sweeplab_modules.tasks.assimilation import StateAssimilation
from sweeplab_modules.training import TrainingConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LENGTH, POINTS = 40.0, 256
X = np.arange(POINTS) * LENGTH / POINTS


def test_kdv_soliton_travels_at_its_speed_unchanged() -> None:
    speed, time = 1.5, 5.0
    u0 = kdv_soliton(X, 0.0, speed, 10.0, LENGTH)
    final = etdrk4_solve(u0, *kdv_operators(POINTS, LENGTH), 1e-3, 5000, 1)[0]
    np.testing.assert_allclose(final, kdv_soliton(X, time, speed, 10.0, LENGTH), atol=1e-6)
    # The peak, located by a parabola through the three largest values, moved c t.
    peak = int(np.argmax(final))
    left, centre, right = final[peak - 1], final[peak], final[peak + 1]
    position = X[peak] + 0.5 * (left - right) / (left - 2 * centre + right) * (LENGTH / POINTS)
    assert (position - 10.0) / time == pytest.approx(speed, rel=2e-3)


def test_kdv_conserves_mass_and_momentum_through_a_collision() -> None:
    # A fast soliton overtakes a slow one: the field changes shape, the invariants do not.
    u0 = kdv_soliton(X, 0.0, 2.0, 8.0, LENGTH) + kdv_soliton(X, 0.0, 0.5, 16.0, LENGTH)
    snapshots = etdrk4_solve(u0, *kdv_operators(POINTS, LENGTH), 1e-3, 1000, 8)
    assert np.abs(snapshots[-1] - u0).max() > 0.5  # it did move
    np.testing.assert_allclose(snapshots.mean(axis=-1), u0.mean(), rtol=1e-12)
    np.testing.assert_allclose((snapshots**2).mean(axis=-1), (u0**2).mean(), rtol=1e-8)


@pytest.mark.parametrize("mode", [3, 10, 20])
def test_kuramoto_sivashinsky_small_perturbations_grow_at_k2_minus_k4(mode: int) -> None:
    length, points = 32 * math.pi, 128
    x = np.arange(points) * length / points
    k = 2 * math.pi * mode / length
    u0 = 1e-8 * np.cos(k * x)
    final = etdrk4_solve(u0, *kuramoto_sivashinsky_operators(points, length), 0.25, 40, 1)[0]
    amplitude = 2 * np.abs(np.fft.rfft(final)[mode]) / points
    assert amplitude / 1e-8 == pytest.approx(math.exp((k**2 - k**4) * 10.0), rel=1e-6)


def test_etdrk4_is_fourth_order_in_time() -> None:
    # KS over 2 time units from a smooth field: halving dt divides the error by ~16.
    length, points = 32 * math.pi, 128
    x = np.arange(points) * length / points
    u0 = np.cos(x / 16) * (1 + np.sin(x / 16))
    operators = kuramoto_sivashinsky_operators(points, length)
    reference = etdrk4_solve(u0, *operators, 1 / 64, 128, 1)[0]
    errors = [np.abs(etdrk4_solve(u0, *operators, dt, round(2 / dt), 1)[0] - reference).max() for dt in (0.5, 0.25)]
    assert 12 < errors[0] / errors[1] < 20, errors


def test_observations_follow_the_observation_model() -> None:
    params = KuramotoSivashinskyParams(
        n_train=40,
        n_val=4,
        n_test=4,
        horizon=10,
        sensors=8,
        noise_level=0.1,
        observation_probability=0.3,
        warmup=20.0,
        batch_size=16,
    )
    arrays = generate_kuramoto_sivashinsky(params)
    x, y = arrays["x_train"], arrays["y_train"]
    values, ranks = x[:, 1:11], x[:, 11:]
    observed = ranks > 0
    for sample_ranks in ranks:
        for step_ranks in sample_ranks:
            assert sorted(step_ranks[step_ranks > 0]) in ([], list(range(1, 9)))  # all 8 sensors or none
    assert observed.any(axis=2).mean() == pytest.approx(0.3, abs=0.06)
    noise = (values - y)[observed]
    rms = np.sqrt((y**2).mean(axis=(1, 2)))
    assert noise.std() == pytest.approx(0.1 * rms.mean(), rel=0.1)
    assert (values[~observed] == 0).all()
    rebatched = generate_kuramoto_sivashinsky(params.model_copy(update={"batch_size": 7}))
    np.testing.assert_array_equal(rebatched["x_train"], x)


def test_kdv_speeds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="exceeds max_speed"):
        KdVParams(min_speed=3.0, max_speed=2.0)


def test_kdv_data_layout() -> None:
    params = KdVParams(n_train=3, n_val=1, n_test=1, horizon=4, dt=5e-3, fine_resolution=128, resolution=32)
    arrays = generate_kdv(params)
    assert arrays["x_train"].shape == (3, 9, 32) and arrays["y_train"].shape == (3, 4, 32)
    assert params.in_channels == 9 and params.out_channels == 4


# The model


NODA_PRESETS = [
    (name, preset) for name in sorted(MODELS) if MODELS[name].task == "assimilation" for preset in MODELS[name].presets
]


def observed_batch(batch: int = 4, horizon: int = 3, points: int = 32, sensors: int = 6) -> torch.Tensor:
    torch.manual_seed(0)
    state = torch.randn(batch, 1, points)
    ranks = torch.zeros(batch, horizon, points)
    ranks[:, ::2, :sensors] = torch.arange(1, sensors + 1, dtype=torch.float32)  # steps 0 and 2 observed
    values = torch.randn(batch, horizon, points) * (ranks > 0)
    return torch.cat([state, values, ranks], dim=1)


@pytest.mark.parametrize(("name", "preset"), NODA_PRESETS, ids=[f"{n}-{p}" for n, p in NODA_PRESETS])
def test_preset_shapes_gradients_and_fit(name: str, preset: str) -> None:
    x = observed_batch()
    model = build_model(name, 7, 3, **MODELS[name].presets[preset])
    target = torch.cumsum(x[:, :1].expand(-1, 3, -1), dim=-1) / 32  # smooth, non-local, one per step
    assert model(x).shape == target.shape
    relative_l2(model(x), target).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, missing
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    initial = relative_l2(model(x), target).item()
    for _ in range(300):
        optimizer.zero_grad()
        loss = relative_l2(model(x), target)
        if loss.item() < initial / 10:
            break
        loss.backward()
        optimizer.step()
    assert loss.item() < initial / 10, (initial, loss.item())


def test_steps_without_observations_are_pure_forecasts() -> None:
    x = observed_batch()
    model = build_model("noda", 7, 3, **MODELS["noda"].presets["small"])
    before = model(x)
    with torch.no_grad():  # another gain changes only the observed steps (0 and 2) and what follows them
        for parameter in model.gain.parameters():
            parameter.add_(0.1)
    after = model(x)
    assert not torch.allclose(before[:, 0], after[:, 0])
    unobserved = x.clone()
    unobserved[:, 4:] = 0
    forecast = model(unobserved)
    state, steps = x[:, :1], []
    for _ in range(3):
        state = state + model.dynamics(state)
        steps.append(state)
    torch.testing.assert_close(forecast, torch.cat(steps, dim=1))


def test_wrong_channel_layout_is_an_error() -> None:
    with pytest.raises(ValueError, match="input channels"):
        build_model("noda", 5, 3)


def test_task_scores_with_fewer_sensors_by_dropping_the_higher_ranks() -> None:
    x = observed_batch()
    model = build_model("noda", 7, 3, **MODELS["noda"].presets["small"])
    task = StateAssimilation(model, TrainingConfig(), 7, 3)
    with torch.no_grad():
        restricted = x.clone()
        restricted[:, 4:][restricted[:, 4:] > 2] = 0  # keep sensors ranked 1 and 2
        torch.testing.assert_close(task(x, max_sensors=2), task(restricted))
        no_observations = x.clone()
        no_observations[:, 4:] = 0
        torch.testing.assert_close(task(x, max_sensors=0), task(no_observations))
        assert not torch.allclose(task(x), task(x, max_sensors=0))
    assert isinstance(task.model, nn.Module)
