"""Trials sharing a device: placement over a host's GPUs, and a trial that runs out of memory beside others.

There is no GPU on the development machines, so the out-of-memory error is raised by a probe model (the error
PyTorch raises, ``torch.OutOfMemoryError``); everything around it is real: two trials in two threads, Optuna and
MLflow in SQLite.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest
import torch
from conftest import write_study
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeplab.record import DEVICE_ATTR, REASON_ATTR, RUN_ATTR
from sweeplab.run import run_study
from sweeplab.run._placement import WAITING, DevicePlacement
from sweeplab.spec import load_study
from sweeplab_modules import registry

nn = torch.nn


class OomProbe(nn.Module):
    """A 1x1 convolution playing one of two trials on a shared GPU: ``slow`` marks that it trains (a file) and
    takes its time; ``oom`` runs out of memory once, as soon as the slow one trains (at once without a marker)."""

    raised = False

    def __init__(self, in_channels: int, out_channels: int, role: str = "slow", marker: str = "") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.role = role
        self.marker = Path(marker) if marker else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.role == "slow" and self.marker is not None:
            self.marker.touch()
            time.sleep(0.2)
        elif self.role == "oom" and not OomProbe.raised:
            deadline = time.monotonic() + 60
            while self.marker is not None and not self.marker.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            OomProbe.raised = True
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (raised by the probe)")
        return self.conv(x)


@pytest.fixture
def oom_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry.ModelEntry("oom_probe", f"{__name__}:OomProbe", "operator", 2, "out-of-memory probe")
    monkeypatch.setitem(registry.MODELS._entries, "oom_probe", entry)  # type: ignore[attr-defined]
    monkeypatch.setattr(OomProbe, "raised", False)


def _study(models: str, n_jobs: int) -> str:
    return f"""\
name: shared
objective: {{metric: val_rel_l2}}
data:
  name: darcy
  params: {{fine_resolution: 33, resolution: 17, n_train: 16, n_val: 8, n_test: 8, seed: 0}}
models:
{models}search: {{lr: 1.0e-3, batch_size: 8}}
trainer: {{max_epochs: 2, num_threads: 1}}
sampler: random
budget: {{n_trials: 2, n_jobs: {n_jobs}}}
"""


def _trial_runs(tracking: str) -> list:
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("shared").experiment_id
    runs = client.search_runs([experiment], "tags.`sweeplab.role` = 'trial'")
    return sorted(runs, key=lambda run: run.info.start_time)


def test_out_of_memory_beside_another_trial_waits_for_it_and_trains_again(tmp_path: Path, oom_probe: None) -> None:
    marker = tmp_path / "slow-is-training"
    models = "".join(
        f"  - name: oom_probe\n    label: {role}\n    params: {{role: {role}, marker: '{marker}'}}\n"
        for role in ("slow", "oom")
    )
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    outcome = run_study(load_study(write_study(tmp_path, _study(models, 2))), storage=storage, tracking_uri=tracking)

    trials = {t.params["model"]: t for t in optuna.load_study(study_name="shared", storage=storage).get_trials()}
    assert outcome.finished == 2 and all(t.state == TrialState.COMPLETE for t in trials.values())
    assert trials["oom"].intermediate_values.keys() == {0, 1}
    runs = _trial_runs(tracking)
    by_trial = {n: [r for r in runs if r.data.tags["sweeplab.trial"] == str(t.number)] for n, t in trials.items()}
    (slow,), (attempt, retry) = by_trial["slow"], by_trial["oom"]
    assert attempt.info.status == "KILLED" and attempt.data.tags["sweeplab.state"] == "RETRIED"
    assert "out of memory on" in attempt.data.tags["sweeplab.reason"]
    assert "beside 1 other trial(s), attempt 1" in attempt.data.tags["sweeplab.reason"]
    assert retry.info.status == "FINISHED" and retry.data.tags["sweeplab.attempt"] == "2"
    assert trials["oom"].user_attrs[RUN_ATTR] == retry.info.run_id
    assert "val_rel_l2" in retry.data.metrics
    # It waited for the trial it shared the device with.
    assert retry.info.start_time >= slow.info.end_time
    assert trials["oom"].user_attrs[DEVICE_ATTR] == trials["slow"].user_attrs[DEVICE_ATTR]


def test_out_of_memory_alone_fails_the_trial_and_the_study_goes_on(tmp_path: Path, oom_probe: None) -> None:
    models = "".join(
        f"  - name: oom_probe\n    label: {role}\n    params: {{role: {role}}}\n" for role in ("oom", "ok")
    )
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    outcome = run_study(load_study(write_study(tmp_path, _study(models, 1))), storage=storage, tracking_uri=tracking)

    trials = {t.params["model"]: t for t in optuna.load_study(study_name="shared", storage=storage).get_trials()}
    assert trials["oom"].state == TrialState.FAIL and "OutOfMemoryError" in trials["oom"].user_attrs[REASON_ATTR]
    assert trials["ok"].state == TrialState.COMPLETE and outcome.finished == 2
    failed = [r for r in _trial_runs(tracking) if r.data.tags["sweeplab.state"] == "FAIL"]
    assert len(failed) == 1 and failed[0].info.status == "FAILED"


def _on_devices(study: optuna.Study, devices: list[str]) -> list[optuna.Trial]:
    """Running trials of ``study``, one on each of ``devices`` (their ``device`` attribute)."""
    trials = [study.ask() for _ in devices]
    for trial, device in zip(trials, devices, strict=True):
        trial.set_user_attr(DEVICE_ATTR, device)
    return trials


def test_each_trial_takes_the_gpu_with_the_fewest_trials() -> None:
    study = optuna.create_study()
    placement = DevicePlacement("cuda", 1, gpu_ids=["GPU-a", "GPU-b", "GPU-c"])
    _on_devices(study, [placement.label(0), placement.label(0), placement.label(2), "elsewhere/GPU-b"])
    # GPU-b has none of this host's trials; then each GPU in turn as the loads even out.
    choices = [placement.claim(study.ask(), threading.Event()) for _ in range(4)]
    assert choices == [1, 1, 2, 0]
    assert study.trials[-1].user_attrs[DEVICE_ATTR] == placement.label(0)


def test_trials_are_placed_only_on_gpus_one_device_each() -> None:
    assert DevicePlacement("cpu", 1).gpu_ids == [] and DevicePlacement("cuda", 2).gpu_ids == []
    study = optuna.create_study()
    placement = DevicePlacement("cpu", 1)
    assert placement.claim(study.ask(), threading.Event()) is None
    assert study.trials[0].user_attrs[DEVICE_ATTR] == placement.label(None)


def test_a_new_trial_does_not_take_the_room_a_waiting_trial_waits_for() -> None:
    study = optuna.create_study()
    placement = DevicePlacement("cuda", 1, gpu_ids=["GPU-a"], poll=0.05)
    (waiting,) = _on_devices(study, [f"{placement.label(0)} {WAITING}"])
    started = time.monotonic()
    threading.Timer(0.3, lambda: waiting.set_user_attr(DEVICE_ATTR, placement.label(0))).start()  # it trains again
    assert placement.claim(study.ask(), threading.Event()) == 0
    assert time.monotonic() - started >= 0.25
    stop = threading.Event()
    stop.set()
    _on_devices(study, [f"{placement.label(0)} {WAITING}"])
    assert placement.claim(study.ask(), stop) is None  # the study is stopping: no device


def test_trials_waiting_for_memory_count_as_others_on_the_device() -> None:
    # A trial that has just freed its memory to wait may be why this one ran out: this one waits too.
    study = optuna.create_study()
    placement = DevicePlacement("cuda", 1, gpu_ids=["GPU-a", "GPU-b"])
    _on_devices(study, [placement.label(0), f"{placement.label(0)} {WAITING}", placement.label(1)])
    assert placement.others_on(study.ask(), 0) == (1, 1)  # (training, waiting)


def test_waiting_for_room_ends_when_another_trial_finishes_or_the_study_stops() -> None:
    study = optuna.create_study()
    placement = DevicePlacement("cuda", 1, gpu_ids=["GPU-a"], poll=0.05)
    (other,) = _on_devices(study, [placement.label(0)])
    waiting = study.ask()
    started = time.monotonic()
    threading.Timer(0.3, lambda: study.tell(other, 1.0)).start()
    assert placement.wait_for_room(waiting, 0, training=1, stop=threading.Event())
    assert time.monotonic() - started >= 0.25
    stop = threading.Event()
    stop.set()
    _on_devices(study, [placement.label(0)])
    assert not placement.wait_for_room(waiting, 0, training=1, stop=stop)
    assert study.trials[waiting.number].user_attrs[DEVICE_ATTR] == placement.label(0)  # back after waiting


def test_trials_that_ran_out_of_memory_together_train_again_in_the_order_of_their_numbers() -> None:
    study = optuna.create_study()
    placement = DevicePlacement("cuda", 1, gpu_ids=["GPU-a"], poll=0.05)
    label = placement.label(0)
    (first,) = _on_devices(study, [f"{label} {WAITING}"])  # ran out of memory beside the second one and waits
    second = study.ask()
    events: list[str] = []

    def first_trains_then_finishes() -> None:
        first.set_user_attr(DEVICE_ATTR, label)
        events.append("first trains")
        time.sleep(0.3)
        events.append("first finished")
        study.tell(first, 1.0)

    threading.Timer(0.3, first_trains_then_finishes).start()
    assert placement.wait_for_room(second, 0, training=1, stop=threading.Event())
    events.append("second trains")
    assert events == ["first trains", "first finished", "second trains"]


def test_a_trial_waits_for_the_trials_that_train_not_for_those_that_wait() -> None:
    # It ran out of memory beside one training trial and one waiting trial (with a higher number): it trains again
    # once the training one has finished, not at once.
    study = optuna.create_study()
    placement = DevicePlacement("cuda", 1, gpu_ids=["GPU-a"], poll=0.05)
    first = study.ask()
    training, _ = _on_devices(study, [placement.label(0), f"{placement.label(0)} {WAITING}"])
    started = time.monotonic()
    threading.Timer(0.3, lambda: study.tell(training, 1.0)).start()
    assert placement.wait_for_room(first, 0, training=1, stop=threading.Event())
    assert time.monotonic() - started >= 0.25


def _lost_trial(tmp_path: Path, device: str) -> tuple[optuna.Study, optuna.Trial]:
    """A study with heartbeats (1 s, grace 2 s) and one running trial on ``device`` whose worker beat once, then
    died."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage)
    (lost,) = _on_devices(study, [device])
    storage.record_heartbeat(lost._trial_id)
    return study, lost


@pytest.mark.parametrize("lost_trial", ["training", "waiting"])
def test_a_lost_workers_trial_does_not_hold_the_device(tmp_path: Path, lost_trial: str) -> None:
    # Its worker died: no heartbeat for the grace period. A trial that waits for room (behind a training trial) or
    # for a device (behind a waiting trial) fails it, as the start of a trial would.
    placement = DevicePlacement("cuda", 1, gpu_ids=["GPU-a"], poll=0.2)
    label = placement.label(0)
    study, lost = _lost_trial(tmp_path, label if lost_trial == "training" else f"{label} {WAITING}")
    started = time.monotonic()
    if lost_trial == "training":
        assert placement.wait_for_room(study.ask(), 0, training=1, stop=threading.Event())
    else:
        assert placement.claim(study.ask(), threading.Event()) == 0
    assert 1.5 < time.monotonic() - started < 30
    assert study.trials[lost.number].state == TrialState.FAIL
