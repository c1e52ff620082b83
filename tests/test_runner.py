"""End-to-end: real studies on tiny Darcy data into real SQLite Optuna and MLflow stores."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
import yaml
from conftest import TINY_STUDY, mean_field_error, write_study
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeplab.commands._ui import free_port
from sweeplab.record import INTERRUPTED_ATTR, REASON_ATTR, RETRY_OF_ATTR, RUN_ATTR
from sweeplab.run import run_study
from sweeplab.spec import load_study

pytestmark = pytest.mark.slow


def _stores(folder: Path) -> tuple[str, str]:
    return f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db"


def _runs(tracking: str, experiment: str) -> tuple[object, list]:
    client = MlflowClient(tracking)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweeplab.role") == "study"]
    children = [r for r in runs if r.data.tags.get("sweeplab.role") == "trial"]
    assert len(parents) == 1, [r.data.tags for r in runs]
    return parents[0], children


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("tiny")
    storage, tracking = _stores(folder)
    study = load_study(write_study(folder, TINY_STUDY))
    outcome = run_study(study, storage=storage, tracking_uri=tracking)
    return folder, storage, tracking, outcome


def test_optuna_storage_has_the_finished_trials(tiny_run) -> None:
    _, storage, _, outcome = tiny_run
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert outcome.finished == 3 and not outcome.interrupted


def test_mlflow_has_a_parent_and_one_nested_child_per_trial(tiny_run) -> None:
    _, storage, tracking, outcome = tiny_run
    parent, children = _runs(tracking, "tiny")
    assert parent.info.run_id == outcome.parent_run_id and parent.info.status == "FINISHED"
    assert len(children) == 3
    trials = {t.number: t for t in optuna.load_study(study_name="tiny", storage=storage).get_trials()}
    for child in children:
        tags, params, metrics = child.data.tags, child.data.params, child.data.metrics
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        trial = trials[int(tags["sweeplab.trial"])]
        assert trial.user_attrs[RUN_ATTR] == child.info.run_id
        assert tags["sweeplab.state"] == "COMPLETE" and child.info.status == "FINISHED"
        assert tags["sweeplab.architecture"] == "fno2d"
        device = tags["sweeplab.device"]
        assert device == "cpu (1 thread)" or device.startswith("cuda:")  # the study's trainer.num_threads
        assert params["model.width"] == str(trial.params["fno2d.width"])
        assert float(params["lr"]) == pytest.approx(trial.params["lr"])
        assert params["seed"] == "0" and len(params["data.identity"]) >= 16
        assert params["data.resolution"] == "17" and params["data.n_train"] == "16"  # the data set's parameters
        assert params["n_params"] == str(int(metrics["n_params"]))
        assert {"val_rel_l2", "val_loss", "train_loss", "test_rel_l2", "n_params", "fit_seconds"} <= set(metrics)
        assert metrics["val_rel_l2"] == trial.value
        history = MlflowClient(tracking).get_metric_history(child.info.run_id, "val_rel_l2")
        assert [m.step for m in history] == [0, 1]  # one value per epoch
        for package in ("python", "torch", "pytorch_lightning", "optuna", "mlflow", "sweeplab"):
            assert tags[f"sweeplab.version.{package}"]


def test_best_trial_equals_the_best_child_run_and_has_the_checkpoint(tiny_run) -> None:
    folder, _, tracking, outcome = tiny_run
    parent, children = _runs(tracking, "tiny")
    best_child = min(children, key=lambda r: r.data.metrics["val_rel_l2"])
    assert outcome.best_values == [best_child.data.metrics["val_rel_l2"]]
    assert outcome.best_trial == int(best_child.data.tags["sweeplab.trial"])
    assert parent.data.tags["sweeplab.best_run_id"] == best_child.info.run_id
    client = MlflowClient(tracking)
    assert {a.path for a in client.list_artifacts(best_child.info.run_id, "model")} == {
        "model/model.ckpt",
        "model/model.json",
    }
    assert {"study.yaml", "study.resolved.yaml"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    local = client.download_artifacts(parent.info.run_id, "study.resolved.yaml", str(folder))
    resolved = yaml.safe_load(Path(local).read_text())
    assert resolved["data"]["params"]["alpha"] == 2.0 and resolved["trainer"]["precision"] == "32-true"  # defaults


def test_a_best_trials_checkpoint_is_written_before_its_run_ends(tiny_run) -> None:
    _, _, tracking, _ = tiny_run
    _, children = _runs(tracking, "tiny")
    with_model = [run for run in children if MlflowClient(tracking).list_artifacts(run.info.run_id, "model")]
    assert with_model, "no trial run has a model"
    for run in with_model:
        folder = Path(run.info.artifact_uri.removeprefix("file://")) / "model"
        # MLflow copies an artifact with its source's modification time; the inode's change time is the copy's.
        written_ms = max(path.stat().st_ctime for path in folder.iterdir()) * 1000
        assert written_ms <= run.info.end_time + 1, "the run ended before its checkpoint was written"


def test_a_short_study_learns_darcy(tmp_path: Path) -> None:
    # One FNO trial of 40 epochs on 64 samples must beat the best constant guess (the training mean field) by far.
    text = (
        TINY_STUDY.replace("  max_epochs: 2", "  max_epochs: 40")
        .replace("n_train: 16", "n_train: 64")
        .replace(
            "      width: {choices: [4, 8]}\n      modes: {low: 2, high: 4}\n", "      width: 16\n      modes: 6\n"
        )
        .replace("lr: {low: 1.0e-3, high: 1.0e-2, log: true}", "lr: 5.0e-3")
        .replace("  n_trials: 3", "  n_trials: 1")
    )
    study = load_study(write_study(tmp_path, text))
    outcome = run_study(study, *_stores(tmp_path))
    baseline = mean_field_error(study.data_params)
    assert outcome.best_values[0] < 0.5 * baseline, (outcome.best_values, baseline)


def test_a_diverging_trial_fails_with_its_reason_and_the_study_goes_on(tmp_path: Path) -> None:
    text = TINY_STUDY.replace(
        "search:\n  lr: {low: 1.0e-3, high: 1.0e-2, log: true}",
        "search:\n  optimizer: sgd\n  momentum: 0.0\n  lr: {choices: [1.0e+30, 1.0e-3]}",
    ).replace(
        "      width: {choices: [4, 8]}\n      modes: {low: 2, high: 4}\n",
        "      width: {choices: [4]}\n      modes: {choices: [2]}\n",
    )
    text = text.replace("sampler: random", "sampler: grid").replace("  n_trials: 3\n", "  n_trials: 2\n")
    storage, tracking = _stores(tmp_path)
    outcome = run_study(load_study(write_study(tmp_path, text)), storage=storage, tracking_uri=tracking)
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    by_lr = {t.params["lr"]: t for t in trials}
    diverged, healthy = by_lr[1e30], by_lr[1e-3]
    assert diverged.state == TrialState.FAIL and "not finite" in diverged.user_attrs[REASON_ATTR]
    assert healthy.state == TrialState.COMPLETE and outcome.finished == 2
    _, children = _runs(tracking, "tiny")
    failed = [r for r in children if r.data.tags["sweeplab.state"] == "FAIL"]
    assert len(failed) == 1 and failed[0].info.status == "FAILED"
    assert "not finite" in failed[0].data.tags["sweeplab.reason"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_study_resumes_without_repeating_finished_work(tmp_path: Path, stop: signal.Signals) -> None:
    # Trials long enough to be interrupted in the middle (seconds each), one at a time; SIGTERM is what a
    # scheduler or `docker stop` sends (and Lightning has a handler of its own for it).
    text = TINY_STUDY.replace("  max_epochs: 2", "  max_epochs: 200")
    study_file = write_study(tmp_path, text)
    storage, tracking = _stores(tmp_path)
    command = [
        sys.executable,
        "-m",
        "sweeplab",
        "run",
        str(study_file),
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
    ]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while True:
        assert time.monotonic() < deadline and process.poll() is None, "the study never reached its second trial"
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
        except (KeyError, sqlalchemy.exc.OperationalError):  # not created yet
            continue
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if any(t.state == TrialState.COMPLETE for t in trials) and running and running[0].intermediate_values:
            break  # the second trial is in its epochs: interrupt it there
    process.send_signal(stop)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "Run the same command to resume" in output

    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    interrupted = [t for t in trials if t.user_attrs.get(INTERRUPTED_ATTR)]
    assert len(interrupted) == 1 and interrupted[0].state == TrialState.FAIL
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].system_attrs["fixed_params"] == interrupted[0].params
    parent, children = _runs(tracking, "tiny")
    assert parent.info.status == "KILLED"
    killed = [r for r in children if r.info.status == "KILLED"]
    assert [r.data.tags["sweeplab.trial"] for r in killed] == [str(interrupted[0].number)]
    completed_before = {t.number for t in trials if t.state == TrialState.COMPLETE}

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    drawn_after_resume = [t for t in complete if t.number > waiting[0].number]
    assert drawn_after_resume and all(  # a seeded sampler must not replay its first draws after a resume
        t.params != earlier.params for t in drawn_after_resume for earlier in trials if earlier.number < t.number
    )
    assert completed_before <= {t.number for t in complete}  # earlier work kept, not redone
    retried = [t for t in complete if t.user_attrs.get(RETRY_OF_ATTR) == interrupted[0].number]
    assert len(retried) == 1 and retried[0].params == interrupted[0].params
    parent_after, children_after = _runs(tracking, "tiny")
    assert parent_after.info.run_id == parent.info.run_id and parent_after.info.status == "FINISHED"
    assert not [r for r in children_after if r.info.status == "RUNNING"]
    assert len(children_after) == len(trials)  # one run per trial that started, the killed one included


def test_studies_command_lists_counts_and_best(tiny_run) -> None:
    folder, storage, _, outcome = tiny_run
    result = subprocess.run(
        [sys.executable, "-m", "sweeplab", "studies", "--storage", storage], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ tiny "))
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells[:6] == ["tiny", "minimize", "3", "0", "0", "0"]
    assert float(cells[6]) == pytest.approx(outcome.best_values[0], rel=1e-4)


def test_ui_serves_the_study_on_loopback(tiny_run) -> None:
    folder, _, tracking, outcome = tiny_run
    experiment_id = MlflowClient(tracking).get_experiment_by_name("tiny").experiment_id
    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "sweeplab", "ui", "--tracking-uri", tracking, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        search = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/runs/search"
        deadline = time.monotonic() + 90
        while True:
            try:
                body = json.dumps({"experiment_ids": [experiment_id]}).encode()
                request = urllib.request.Request(search, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    runs = json.load(response)["runs"]
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and ui.poll() is None, "the UI did not start"
                time.sleep(1)
        assert outcome.parent_run_id in {r["info"]["run_id"] for r in runs}
        assert len(runs) == 4  # the parent and its three trials
    finally:
        ui.terminate()
        output, _ = ui.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in output
    # None of MLflow's own warnings (a deprecated Starlette module, a registry store left to default) reach the user.
    assert "Warning" not in output and "Registry store URI not provided" not in output, output


def test_parallel_trials_in_one_process_are_all_recorded(tmp_path: Path) -> None:
    text = TINY_STUDY.replace("  n_trials: 3", "  n_trials: 4\n  n_jobs: 2")
    storage, tracking = _stores(tmp_path)
    outcome = run_study(load_study(write_study(tmp_path, text)), storage=storage, tracking_uri=tracking)
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert outcome.finished == 4 and [t.state for t in trials] == [TrialState.COMPLETE] * 4
    _, children = _runs(tracking, "tiny")
    assert sorted(int(r.data.tags["sweeplab.trial"]) for r in children) == [0, 1, 2, 3]
    for child in children:
        trial = trials[int(child.data.tags["sweeplab.trial"])]
        assert child.data.metrics["val_rel_l2"] == trial.value  # each run got its own trial's metrics
        assert child.data.params["model.width"] == str(trial.params["fno2d.width"])


def test_a_comparison_tries_every_architecture_first(tmp_path: Path) -> None:
    # Four labelled variants and four trials: random draws would cover all four in only 9% of seeds.
    variants = "".join(
        f"  - name: fno2d\n    label: fno_{width}\n    params: {{width: {width}, modes: 2, n_layers: 1, padding: 0}}\n"
        for width in (2, 3, 4, 5)
    )
    head, _, rest = TINY_STUDY.partition("models:\n")
    text = head + "models:\n" + variants + rest[rest.index("search:\n  lr") :]
    text = text.replace("max_epochs: 2", "max_epochs: 1").replace("n_trials: 3", "n_trials: 4")
    storage, tracking = _stores(tmp_path)
    run_study(load_study(write_study(tmp_path, text)), storage=storage, tracking_uri=tracking)
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert sorted(t.params["model"] for t in trials) == ["fno_2", "fno_3", "fno_4", "fno_5"]
