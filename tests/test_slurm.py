"""`sweeplab submit` on a real Slurm cluster (tests/_slurm.py: munged, slurmctld and slurmd on this machine) and with
submitit's local executor. The workers share a journal file (Optuna's storage for clusters without a database
server) and a tracking server, as they would on a cluster; one array task is cancelled in the middle of a trial."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY_STUDY, ui_server, write_study
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from sweeplab.record import RETRY_OF_ATTR, finished_trials
from sweeplab.run._storage import storage_for_reading

pytestmark = pytest.mark.slow


def _study(tmp_path: Path, name: str, n_trials: int, max_epochs: int, workers: int) -> Path:
    text = TINY_STUDY.replace("name: tiny", f"name: {name}").replace("  n_trials: 3", f"  n_trials: {n_trials}")
    text = text.replace("  max_epochs: 2", f"  max_epochs: {max_epochs}")
    text += f"""\
storage: journal:///{tmp_path}/study.log
heartbeat: {{interval: 1, grace: 4}}
launcher: {{workers: {workers}, time: 20, folder: {tmp_path}/jobs}}
"""
    return write_study(tmp_path, text)


def _submit(study_file: Path, tracking: str, environment: dict[str, str] | None, *flags: str) -> str:
    command = [sys.executable, "-m", "sweeplab", "submit", str(study_file), "--tracking-uri", tracking, *flags]
    result = subprocess.run(
        command, cwd=study_file.parent, capture_output=True, text=True, env=environment, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _trials(study_file: Path, name: str) -> list[FrozenTrial]:
    storage = storage_for_reading(f"journal:///{study_file.parent}/study.log")
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def _wait(condition, what: str, timeout: float = 600) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _check_records(trials: list[FrozenTrial], tracking: str, name: str, n_trials: int) -> list:  # type: ignore[type-arg]
    """The budget exactly, nothing left running in Optuna or MLflow; the trials' runs."""
    assert finished_trials(trials) == n_trials and all(t.state.is_finished() for t in trials)
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id], max_results=1000)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    parents = [r for r in runs if r.data.tags.get("sweeplab.role") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    return [r for r in runs if r.data.tags.get("sweeplab.role") == "trial"]


@pytest.fixture
def tracking_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The tracking server a researcher starts on the login node: `sweeplab ui` over a SQLite file."""
    with ui_server(f"sqlite:///{tmp_path}/mlflow.db", cwd=tmp_path) as address:
        yield address


def test_a_study_submitted_as_a_job_array_finishes_exactly_its_budget(
    slurm_cluster, tracking_server: str, tmp_path: Path
) -> None:
    study_file = _study(tmp_path, "slurm_budget", n_trials=12, max_epochs=1, workers=3)

    output = _submit(study_file, tracking_server, slurm_cluster.environment, "--slurm")

    array_id = re.search(r"Slurm job array (\d+)", output).group(1)  # type: ignore[union-attr]
    assert f"squeue -j {array_id}" in output
    _wait(lambda: not slurm_cluster.jobs(array_id), "the job array to finish")
    trials = _trials(study_file, "slurm_budget")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 12
    children = _check_records(trials, tracking_server, "slurm_budget", 12)
    assert sorted(int(r.data.tags["sweeplab.trial"]) for r in children) == list(range(12))
    logs = sorted(p.name for p in (tmp_path / "jobs").glob(f"{array_id}_*_log.out"))
    assert logs == [f"{array_id}_{task}_0_log.out" for task in range(3)]  # three array tasks, each a worker


def test_a_cancelled_array_task_is_recovered_by_the_others(slurm_cluster, tracking_server: str, tmp_path: Path) -> None:
    # Trials of several seconds, so that every worker is in one when a task is cancelled.
    study_file = _study(tmp_path, "slurm_cancel", n_trials=6, max_epochs=150, workers=3)
    output = _submit(study_file, tracking_server, slurm_cluster.environment, "--slurm")
    array_id = re.search(r"Slurm job array (\d+)", output).group(1)  # type: ignore[union-attr]

    def all_training() -> bool:
        try:
            trials = _trials(study_file, "slurm_cancel")
        except KeyError:
            return False
        running = [t for t in trials if t.state == TrialState.RUNNING]
        return len(running) == 3 and all(t.intermediate_values for t in running)

    _wait(all_training, "three workers in a trial")
    slurm_cluster.run("scancel", f"{array_id}_1")
    _wait(lambda: not slurm_cluster.jobs(array_id), "the job array to finish")

    trials = _trials(study_file, "slurm_cancel")
    _check_records(trials, tracking_server, "slurm_cancel", 6)
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert len(lost) == 1  # the cancelled worker's trial, failed and queued again
    retries = [t for t in trials if t.user_attrs.get(RETRY_OF_ATTR) == lost[0].number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE and retries[0].params == lost[0].params


def test_submit_refuses_sqlite_from_several_nodes(tmp_path: Path) -> None:
    study_file = _study(tmp_path, "shared", n_trials=2, max_epochs=1, workers=2)
    command = [sys.executable, "-m", "sweeplab", "submit", str(study_file), "--slurm"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "tracking URI sqlite:///mlruns/mlflow.db is a SQLite file" in result.stderr
    assert "mlflow server" in result.stderr and not (tmp_path / "mlruns").exists()  # nothing written


def test_local_workers_take_the_same_path_without_slurm(tmp_path: Path) -> None:
    study_file = _study(tmp_path, "local_workers", n_trials=4, max_epochs=1, workers=2)
    output = _submit(study_file, f"sqlite:///{tmp_path}/mlflow.db", None, "--local")
    assert output.count(": done, 4 trials finished in the study") == 2
    trials = _trials(study_file, "local_workers")
    children = _check_records(trials, f"sqlite:///{tmp_path}/mlflow.db", "local_workers", 4)
    assert len(children) == 4
    # The stores reach the jobs through their environment: no URL (nor a password in one) is pickled on disk.
    pickles = list((tmp_path / "jobs").glob("*.pkl"))
    assert pickles and not [p for p in pickles if b"mlflow.db" in p.read_bytes() or b"study.log" in p.read_bytes()]


@pytest.mark.parametrize(
    "storage, error",
    [
        ("journal:///mlruns/study.log", None),
        ("journal:////shared/study.log", None),
        ("journal://mlruns/study.log", "journal:///relative/path.log or journal:////absolute/path.log"),
        ("journal:///", "journal:///relative/path.log or journal:////absolute/path.log"),
    ],
)
def test_journal_urls_are_checked(tmp_path: Path, storage: str, error: str | None) -> None:
    from sweeplab.spec import StudyError, load_study

    study_file = write_study(tmp_path, TINY_STUDY + f"storage: {storage}\n")
    if error is None:
        assert load_study(study_file).spec.storage == storage
    else:
        with pytest.raises(StudyError, match=rf"study.yaml:\d+ storage: .*{re.escape(error)}"):
            load_study(study_file)


def test_launcher_settings_are_checked_in_the_study_and_on_the_command_line(tmp_path: Path) -> None:
    from sweeplab.spec import StudyError, load_study

    with pytest.raises(StudyError, match=r"study.yaml:\d+ launcher.workers: .*greater than or equal to 1"):
        load_study(write_study(tmp_path, TINY_STUDY + "launcher: {workers: 0}\n"))
    study_file = _study(tmp_path, "flags", n_trials=2, max_epochs=1, workers=2)
    command = [sys.executable, "-m", "sweeplab", "submit", str(study_file), "--local", "--gpus-per-worker", "-1"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--gpus-per-worker: Input should be greater than or equal to 0" in result.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "jobs").exists()  # nothing written
