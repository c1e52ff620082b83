"""From sweep to model: a study's best models as MLflow Models in the Model Registry, loaded back from a fresh
process with ``mlflow.pyfunc`` and ``sweeplab.load_model``, and ``sweeplab predict`` on files; real SQLite and
PostgreSQL stores, real (tiny) trainings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import write_study
from mlflow.tracking import MlflowClient

from sweeplab.data import load_dataset
from sweeplab.record import (
    CHECKPOINT_ARTIFACT,
    RUN_ATTR,
    VERSION_DATA_TAG,
    VERSION_OBJECTIVE_TAG,
    VERSION_RUN_TAG,
    VERSION_VALUE_TAG,
    best_alias,
)
from sweeplab.run import run_study
from sweeplab.spec import load_study, parse_study

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

# Two labelled FNO-2D sizes on Darcy (tested again on a finer grid); "slow" learns at a learning rate a thousand
# times smaller, so the first trial (it, enqueued first) is beaten by the second.
STUDY = """\
name: served
objective: {metric: val_rel_l2, direction: minimize}
data:
  name: darcy
  params: {fine_resolution: 33, resolution: 17, n_train: 16, n_val: 8, n_test: 8, seed: 0, test_resolutions: [33]}
models:
  - {name: fno2d, label: slow, params: {n_layers: 2, padding: 0, projection_width: 8, width: 4, modes: 2, lr: 1.0e-6}}
  - {name: fno2d, label: fast, params: {n_layers: 2, padding: 0, projection_width: 16, width: 8, modes: 4}}
search:
  lr: 1.0e-2
  batch_size: 8
trainer: {max_epochs: 3, num_threads: 1}
sampler: random
pruner: none
budget: {n_trials: 2}
"""


def _fresh_python(script: str, tracking: str) -> dict:
    """Run ``script`` in a new interpreter (nothing of this process's state) and return the JSON it prints."""
    environment = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT / "platform"), str(ROOT / "modules")])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _predict(capsys: pytest.CaptureFixture, tracking: str, model: str, source: Path, target: Path) -> tuple[int, str]:
    """``sweeplab predict`` (in this process: the fresh-process test covers loading); its status and stderr."""
    from sweeplab.cli import main

    capsys.readouterr()
    status = main(["predict", model, "--input", str(source), "--output", str(target), "--tracking-uri", tracking])
    return status, capsys.readouterr().err


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """The study run to one trial, its registry read, then resumed to two: (folder, storage, tracking, study,
    aliases after the first trial)."""
    folder = tmp_path_factory.mktemp("served")
    storage, tracking = f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db"
    study = load_study(write_study(folder, STUDY))
    run_study(study, storage=storage, tracking_uri=tracking, n_trials=1)
    first = dict(MlflowClient(tracking).get_registered_model("served").aliases)
    run_study(study, storage=storage, tracking_uri=tracking, n_trials=2)
    return folder, storage, tracking, study, first


def _trials(storage: str) -> list:
    import optuna

    return optuna.load_study(study_name="served", storage=storage).get_trials()


def test_aliases_move_to_the_better_trial_and_versions_link_back(served) -> None:
    _, storage, tracking, study, first = served
    client = MlflowClient(tracking)
    slow, fast = _trials(storage)
    assert fast.values[0] < slow.values[0]  # the premise: the second trial is the better one
    versions = {v.version: v for v in client.search_model_versions("name = 'served'")}
    by_run = {v.run_id: v.version for v in versions.values()}
    # After the first trial both its aliases named its version; the better second trial took "best".
    slow_version, fast_version = by_run[slow.user_attrs[RUN_ATTR]], by_run[fast.user_attrs[RUN_ATTR]]
    assert first == {"best": slow_version, best_alias("slow"): slow_version}
    aliases = client.get_registered_model("served").aliases
    assert aliases == {"best": fast_version, "best-slow": slow_version, "best-fast": fast_version}
    parent_objective = "minimize val_rel_l2"
    for trial, version in ((slow, slow_version), (fast, fast_version)):
        tags = versions[version].tags
        run = client.get_run(trial.user_attrs[RUN_ATTR])
        assert tags[VERSION_RUN_TAG] == run.info.run_id == versions[version].run_id
        assert tags[VERSION_DATA_TAG] == run.data.params["data.identity"]
        assert tags[VERSION_OBJECTIVE_TAG] == parent_objective
        assert float(tags[VERSION_VALUE_TAG]) == trial.values[0]
        assert tags["sweeplab.trial"] == str(trial.number)


def test_the_parent_records_the_best_value_after_every_trial(served) -> None:
    _, storage, tracking, _, _ = served
    client = MlflowClient(tracking)
    slow, fast = _trials(storage)
    parent = client.get_run(client.get_run(slow.user_attrs[RUN_ATTR]).data.tags["mlflow.parentRunId"])
    history = client.get_metric_history(parent.info.run_id, "best_val_rel_l2")
    assert [(m.step, m.value) for m in history] == [(0, slow.values[0]), (1, fast.values[0])]
    assert parent.data.tags["sweeplab.best_run_id"] == fast.user_attrs[RUN_ATTR]
    # What an MLflow user reads in the UI: the loss actually used (the task's default here, not None), and an
    # experiment marked as model training (MLflow 3 opens it on its runs).
    assert client.get_run(fast.user_attrs[RUN_ATTR]).data.params["loss"] == "rel_l2"
    assert client.get_experiment(parent.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_checkpoint_stays_loadable_with_weights_only(served, tmp_path: Path) -> None:
    _, storage, tracking, _, _ = served
    run_id = _trials(storage)[1].user_attrs[RUN_ATTR]
    local = MlflowClient(tracking).download_artifacts(run_id, CHECKPOINT_ARTIFACT, str(tmp_path))
    state = torch.load(local, map_location="cpu", weights_only=True)["state_dict"]
    assert "output_normalizer.std" in state and any(key.startswith("model.") for key in state)


_LOAD_AND_PREDICT = """
import json, mlflow.pyfunc, numpy as np, torch, sweeplab
from mlflow.tracking import MlflowClient
from sweeplab.data import load_dataset
from sweeplab.spec import load_study
from sweeplab_modules.losses import relative_l2

study = load_study({study_file!r})
data = load_dataset("darcy", study.data_params)
x_fine, y_fine = data.test_at_resolution[33]
version = MlflowClient().get_model_version_by_alias("served", "best")
pyfunc = mlflow.pyfunc.load_model("models:/served@best")
module = sweeplab.load_model("models:/served@best")
by_run = sweeplab.load_model(version.run_id)
error = lambda y, truth: float(relative_l2(torch.as_tensor(y), torch.as_tensor(truth)))
with torch.no_grad():
    coarse = module(torch.as_tensor(data.x_test)).numpy()
print(json.dumps({{
    "run_id": version.run_id,
    "training": module.training,
    "pyfunc_coarse": error(pyfunc.predict(data.x_test), data.y_test),
    "pyfunc_fine": error(pyfunc.predict(x_fine), y_fine),
    "module_coarse": error(coarse, data.y_test),
    "module_fine": error(module.predict(x_fine), y_fine),
    "run_id_same": bool(np.array_equal(by_run.predict(data.x_test), coarse)),
    "runs_uri_same": bool(
        np.array_equal(sweeplab.load_model(f"runs:/{{version.run_id}}").predict(data.x_test), coarse)
    ),
    "raw_model": type(pyfunc.get_raw_model()).__name__,
    "signature": str(pyfunc.metadata.signature.inputs),
    "example": pyfunc.metadata.saved_input_example_info is not None,
}}))
"""


def test_a_fresh_process_loads_the_best_model_and_reproduces_the_logged_test_error(served) -> None:
    folder, storage, tracking, _, _ = served
    found = _fresh_python(_LOAD_AND_PREDICT.format(study_file=str(folder / "study.yaml")), tracking)
    best = _trials(storage)[1]
    assert found["run_id"] == best.user_attrs[RUN_ATTR]
    metrics = MlflowClient(tracking).get_run(found["run_id"]).data.metrics
    # Physical units in and out: the errors are the test metrics the run logged, at the training grid and at the
    # finer grid the resolution-invariant FNO was tested on.
    for loader in ("pyfunc", "module"):
        assert found[f"{loader}_coarse"] == pytest.approx(metrics["test_rel_l2"], rel=1e-5)
        assert found[f"{loader}_fine"] == pytest.approx(metrics["test_rel_l2_33"], rel=1e-5)
    assert found["training"] is False and found["raw_model"] == "PhysicalModel"
    assert found["run_id_same"] and found["runs_uri_same"]
    assert "(-1, 1, -1, -1)" in found["signature"] and found["example"]


def test_predict_on_files(served, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder, _, tracking, study, _ = served
    data = load_dataset("darcy", study.data_params)
    module = _fresh_module(tracking)
    expected = module.predict(data.x_test)
    np.save(tmp_path / "x.npy", data.x_test)
    np.savez(tmp_path / "x.npz", x=data.x_test, y=data.y_test)  # several arrays: the one named x
    with h5py.File(tmp_path / "x.h5", "w") as file:
        file["inputs"] = data.x_test  # one array: whatever its name
    for source, target in (("x.npy", "y.npz"), ("x.npz", "y.h5"), ("x.h5", "out/y.npy")):
        status, errors = _predict(capsys, tracking, "models:/served@best", tmp_path / source, tmp_path / target)
        assert status == 0, errors
    np.testing.assert_allclose(np.load(tmp_path / "y.npz")["y"], expected, rtol=1e-6)
    with h5py.File(tmp_path / "y.h5") as file:
        np.testing.assert_allclose(file["y"][()], expected, rtol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "y.npy"), expected, rtol=1e-6)


def _fresh_module(tracking: str):
    import sweeplab

    return sweeplab.load_model("models:/served@best", tracking_uri=tracking)


@pytest.mark.parametrize(
    ("inputs", "model", "output", "message"),
    [
        ("one_sample", "models:/served@best", "z.npy", "add a leading batch axis"),
        ("channels_last", "models:/served@best", "z.npy", "channels last?"),
        ("extra_axis", "models:/served@best", "z.npy", "5 dimensions"),
        ("good", "models:/served@nope", "z.npy", "alias nope not found"),
        ("good", "0123456789abcdef0123456789abcdef", "z.npy", "Run with id=0123456789abcdef0123456789abcdef not found"),
        ("good", "models:/served@best", "z.csv", "unknown format '.csv'"),
        ("missing", "models:/served@best", "z.npy", "no such file"),
        ("two_arrays", "models:/served@best", "z.npy", "name the input array 'x'"),
    ],
)
def test_predict_refuses_bad_input_with_exit_2_and_writes_nothing(
    served, tmp_path: Path, capsys: pytest.CaptureFixture, inputs: str, model: str, output: str, message: str
) -> None:
    _, _, tracking, study, _ = served
    x = load_dataset("darcy", study.data_params).x_test
    arrays = {
        "good": x,
        "one_sample": x[0],
        "channels_last": x.transpose(0, 2, 3, 1),
        "extra_axis": x[:, :, None],
    }
    path = tmp_path / f"{inputs}.npy"
    if inputs in arrays:
        np.save(path, arrays[inputs])
    elif inputs == "two_arrays":
        path = tmp_path / "two.npz"
        np.savez(path, a=x, b=x)
    status, errors = _predict(capsys, tracking, model, path, tmp_path / output)
    assert status == 2 and message in errors and errors.startswith("error: ")
    assert not (tmp_path / output).exists()


SELF_TUNING_STUDY = """\
name: {name}
objective: {{metric: val_loss, direction: minimize}}
data:
  name: digits
  params: {{n_train: 60, n_val: 40, n_test: 40, seed: 0}}
models:
  - name: cnn_classifier
    params: {{width: 4, n_blocks: 1, hidden: 8}}
search: {{batch_size: 20, lr: 1.0e-2}}
strategy: {strategy}
hyperparameters:
  dropout: {{apply: dropout, at: [head.1], low: 0.0, high: 0.8, initial: 0.2}}
  noise: {{apply: input_noise, low: 0.0, high: 1.0, initial: 0.1}}
trainer: {{max_epochs: 2, num_threads: 1}}
sampler: random
budget: {{n_trials: 1}}
"""


@pytest.mark.parametrize("strategy", ["self_tuning", "optuna"])
def test_a_regularised_trial_loads_as_the_network_it_trained(tmp_path: Path, strategy: str) -> None:
    """The best-response layers (self-tuning) and the inserted regularisers (sampled hyperparameters) are part of
    the trained network: the loaded model is that network, and its test accuracy the one the run logged."""
    import sweeplab
    from sweeplab_modules.stn import InputRegularisation, StructuredBestResponse

    name = f"regularised-{strategy.replace('_', '-')}"
    study = parse_study(SELF_TUNING_STUDY.format(name=name, strategy=strategy), f"{name}.yaml")
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    run_study(study, storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=tracking)
    module = sweeplab.load_model(f"models:/{name}@best", tracking_uri=tracking)
    layers = [type(layer) for layer in module.network.modules()]
    assert InputRegularisation in layers and (StructuredBestResponse in layers) == (strategy == "self_tuning")
    data = load_dataset("digits", study.data_params)
    logits = module.predict(data.x_test)
    accuracy = float((logits.argmax(axis=1) == data.y_test.reshape(len(data.y_test), -1).argmax(axis=1)).mean())
    version = MlflowClient(tracking).get_model_version_by_alias(name, "best")
    assert accuracy == pytest.approx(MlflowClient(tracking).get_run(version.run_id).data.metrics["test_acc"])


def test_the_registry_on_postgresql(postgres_cluster, tmp_path: Path) -> None:
    import sweeplab

    storage = postgres_cluster.create_database("served_optuna")
    tracking = postgres_cluster.create_database("served_mlflow")
    study = load_study(write_study(tmp_path, STUDY))
    run_study(study, storage=storage, tracking_uri=tracking, n_trials=2)
    client = MlflowClient(tracking)
    aliases = client.get_registered_model("served").aliases
    assert set(aliases) == {"best", "best-slow", "best-fast"}
    best = client.get_model_version("served", aliases["best"])
    module = sweeplab.load_model("models:/served@best", tracking_uri=tracking)
    data = load_dataset("darcy", study.data_params)
    from sweeplab_modules.losses import relative_l2

    error = float(relative_l2(torch.as_tensor(module.predict(data.x_test)), torch.as_tensor(data.y_test)))
    assert error == pytest.approx(client.get_run(best.run_id).data.metrics["test_rel_l2"], rel=1e-5)


def test_the_registry_through_an_mlflow_server(tmp_path: Path) -> None:
    """A tracking server (SQLite behind it, artifacts served by it): the same versions, aliases and loading."""
    import time
    import urllib.request

    import sweeplab
    from sweeplab.commands._ui import free_port

    port = free_port()
    database = f"sqlite:///{tmp_path}/server.db"
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", database, "--registry-store-uri"]
    command += [database, "--artifacts-destination", str(tmp_path / "artifacts"), "--port", str(port)]
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen([*command, "--workers", "1"], env=environment, start_new_session=True)
    tracking = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded 2-core machine takes over a minute to import the server
        while True:
            try:
                with urllib.request.urlopen(f"{tracking}/health", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the MLflow server did not start"
                time.sleep(1)
        study = load_study(write_study(tmp_path, STUDY))
        run_study(study, storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=tracking, n_trials=2)
        client = MlflowClient(tracking)
        aliases = client.get_registered_model("served").aliases
        assert set(aliases) == {"best", "best-slow", "best-fast"}
        best = client.get_model_version("served", aliases["best"])
        module = sweeplab.load_model("models:/served@best", tracking_uri=tracking)
        data = load_dataset("darcy", study.data_params)
        from sweeplab_modules.losses import relative_l2

        error = float(relative_l2(torch.as_tensor(module.predict(data.x_test)), torch.as_tensor(data.y_test)))
        assert error == pytest.approx(client.get_run(best.run_id).data.metrics["test_rel_l2"], rel=1e-5)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
