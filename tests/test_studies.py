"""Every shipped study runs: each file in studies/, shrunk to tiny data and one epoch, trains one trial of each of
its architectures end to end (validation alone cannot catch a preset that does not fit its data, or a task that
fails on a real batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from conftest import REPO, write_study
from optuna.trial import TrialState

from sweeplab.record import REASON_ATTR
from sweeplab.run import run_study
from sweeplab.spec import load_study

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

STUDIES = sorted((REPO / "studies").glob("*.yaml"))

# Per data set: small data that every architecture of the shipped studies accepts (25 points: an FNO with 12
# modes; 32: a U-Net of 5 scales; 200 samples: 128 stitching anchors), with grids that subsample evenly.
TINY_DATA: dict[str, dict[str, Any]] = {
    "darcy": {"fine_resolution": 49, "resolution": 25, "n_train": 8, "n_val": 4, "n_test": 4},
    "burgers": {"fine_resolution": 128, "resolution": 32, "n_train": 8, "n_val": 4, "n_test": 4, "dt": 1e-3},
    "navier_stokes": {
        "fine_resolution": 64,
        "resolution": 32,
        "final_time": 12.0,
        "dt": 1e-2,
        "n_train": 4,
        "n_val": 2,
        "n_test": 2,
    },
    "digits": {"n_train": 200, "n_val": 50, "n_test": 50},
    "mnist5k": {"n_train": 200, "n_val": 50, "n_test": 50},
    "laplace_denoising": {"n_train": 2000, "n_val": 500, "n_test": 500},
    "mnist5k_denoising": {"n_train": 100, "n_val": 20, "n_test": 20},
    "room_acoustics": {"fine_resolution": 65, "resolution": 33, "n_train": 8, "n_val": 4, "n_test": 4},
    "kdv": {"n_train": 8, "n_val": 4, "n_test": 4, "horizon": 4, "dt": 5e-3, "fine_resolution": 128},
    "kuramoto_sivashinsky": {"n_train": 8, "n_val": 4, "n_test": 4, "horizon": 4, "warmup": 10.0},
    "dcdm_darcy": {"n_train": 8, "n_val": 4, "n_test": 4, "resolution": 17, "ritz_vectors": 16},
}
TINY_TEST_RESOLUTIONS = {"burgers": [64], "darcy": [49], "navier_stokes": [64]}


def tiny(spec: dict[str, Any]) -> dict[str, Any]:
    data = spec["data"]
    data["params"].update(TINY_DATA[data["name"]])
    if "test_resolutions" in data["params"]:
        data["params"]["test_resolutions"] = TINY_TEST_RESOLUTIONS[data["name"]]
    # The class-incremental protocol trains each group of classes (n_tasks) for an epoch at least.
    groups = max(model.get("params", {}).get("n_tasks", 1) for model in spec["models"])
    spec["trainer"] = {**spec.get("trainer", {}), "max_epochs": max(2, groups), "num_threads": 1}
    spec["budget"] = {"n_trials": len(spec["models"])}  # the first trials take each architecture once
    return spec


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_every_shipped_study_trains_each_architecture(path: Path, tmp_path: Path) -> None:
    spec = tiny(yaml.safe_load(path.read_text()))
    study = load_study(write_study(tmp_path, yaml.safe_dump(spec, sort_keys=False), path.name))
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    run_study(study, storage=storage, tracking_uri=tracking)
    trials = optuna.load_study(study_name=study.name, storage=storage).get_trials()
    failed = {t.number: t.user_attrs.get(REASON_ATTR) for t in trials if t.state == TrialState.FAIL}
    assert not failed, failed
    if study.spec.sampler.name != "grid":  # a grid visits its points in its own order
        assert {t.params["model"] for t in trials} == {plan.key for plan in study.models}
