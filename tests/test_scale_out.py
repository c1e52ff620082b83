"""Many workers on one study: real `sweeplab worker` processes on a throwaway PostgreSQL cluster and on SQLite,
started at once on fresh databases, one of them killed with SIGKILL in the middle of a trial."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from conftest import TINY_STUDY, write_study
from mlflow.tracking import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from sweeplab.record import RETRY_OF_ATTR, RUN_ATTR, finished_trials
from sweeplab.run._storage import storage_for_reading

pytestmark = pytest.mark.slow

# Trivially small trials: what is tested is the coordination of the workers, not the training.
METRICS = {"val_rel_l2", "val_loss", "train_loss", "test_rel_l2", "n_params", "fit_seconds"}


def _study_text(n_trials: int, extra: str = "", max_epochs: int = 1) -> str:
    text = TINY_STUDY.replace("  n_trials: 3", f"  n_trials: {n_trials}")
    return text.replace("  max_epochs: 2", f"  max_epochs: {max_epochs}") + extra


def _worker(study_file: Path, storage: str, tracking: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "sweeplab", "worker", str(study_file), "--storage", storage]
    return subprocess.Popen(
        [*command, "--tracking-uri", tracking],
        cwd=study_file.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stores(backend: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> tuple[str, str]:
    """The study's Optuna storage and MLflow tracking URI on ``backend``; a journal file takes SQLite tracking,
    as one machine's workers may share it."""
    if backend == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        return cluster.create_database(f"{name}_optuna"), cluster.create_database(f"{name}_mlflow")
    storage = f"journal:///{tmp_path}/optuna.log" if backend == "journal" else f"sqlite:///{tmp_path}/optuna.db"
    return storage, f"sqlite:///{tmp_path}/mlflow.db"


def _trials(storage: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name="tiny", storage=storage_for_reading(storage)).get_trials()


def _runs(tracking: str) -> tuple[object, list]:
    client = MlflowClient(tracking)
    experiment_id = client.get_experiment_by_name("tiny").experiment_id
    runs = client.search_runs([experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweeplab.role") == "study"]
    children = [r for r in runs if r.data.tags.get("sweeplab.role") == "trial"]
    assert len(parents) == 1, [r.data.tags for r in parents]  # simultaneous starts made one parent, not several
    return parents[0], children


def _wait_until(storage: str, workers: list[subprocess.Popen[str]], ready: Callable[[list[FrozenTrial]], bool]) -> None:
    """Poll the study until ``ready(trials)``, while every worker is alive."""
    deadline = time.monotonic() + 300
    while True:
        ended = [w for w in workers if w.poll() is not None]
        assert not ended, f"a worker ended first, exit {ended[0].returncode}: {ended[0].communicate()[0]}"
        assert time.monotonic() < deadline, "the trials never got there"
        time.sleep(0.1)
        try:
            trials = _trials(storage)
        except (KeyError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):  # not created yet
            continue
        if ready(trials):
            return


def _run_workers(study_file: Path, storage: str, tracking: str, count: int) -> list[set[int]]:
    """``count`` workers started at once; the trial numbers each one finished."""
    workers = [_worker(study_file, storage, tracking) for _ in range(count)]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output
    return [{int(n) for n in re.findall(r"trial +(\d+) COMPLETE", output)} for output in outputs]


@pytest.mark.parametrize("backend, workers", [("postgresql", 3), ("sqlite", 4), ("journal", 3)])
def test_workers_started_at_once_finish_exactly_the_budget(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str, workers: int
) -> None:
    storage, tracking = _stores(backend, tmp_path, request, f"parallel_{workers}")
    study_file = write_study(tmp_path, _study_text(30))

    ran = _run_workers(study_file, storage, tracking, workers)

    trials = _trials(storage)
    assert finished_trials(trials) == 30 and [t.state for t in trials] == [TrialState.COMPLETE] * 30
    assert sorted(n for numbers in ran for n in numbers) == list(range(30))  # each trial ran once, in one worker
    parent, children = _runs(tracking)
    assert parent.info.status == "FINISHED"
    assert sorted(int(r.data.tags["sweeplab.trial"]) for r in children) == list(range(30))
    by_number = {t.number: t for t in trials}
    for child in children:
        trial = by_number[int(child.data.tags["sweeplab.trial"])]
        assert child.info.status == "FINISHED" and trial.user_attrs[RUN_ATTR] == child.info.run_id
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert set(child.data.metrics) >= METRICS and child.data.metrics["val_rel_l2"] == trial.value


@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_a_worker_killed_mid_trial_is_retried_and_its_run_closed(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    storage, tracking = _stores(backend, tmp_path, request, "killed")
    # Trials long enough to be killed in their epochs; heartbeats every second, lost after 3 s of silence.
    heartbeat = "heartbeat: {interval: 1, grace: 3}\n"
    study_file = write_study(tmp_path, _study_text(2, heartbeat, max_epochs=40))
    doomed = _worker(study_file, storage, tracking)
    _wait_until(storage, [doomed], lambda trials: bool(trials and trials[0].intermediate_values))
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    lost = _trials(storage)[0]
    assert lost.state == TrialState.RUNNING  # nobody told Optuna: only the silence of its heartbeat will

    survivor = _worker(study_file, storage, tracking)  # the same command: the study resumes
    output, _ = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, output

    trials = _trials(storage)
    assert trials[0].state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get(RETRY_OF_ATTR) == 0]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE and retries[0].params == lost.params
    assert finished_trials(trials) == 2 and sum(t.state == TrialState.COMPLETE for t in trials) == 2
    parent, children = _runs(tracking)
    assert parent.info.status == "FINISHED"
    assert not [r for r in children if r.info.status == "RUNNING"]
    killed = next(r for r in children if r.info.run_id == lost.user_attrs[RUN_ATTR])
    assert killed.info.status == "KILLED" and killed.data.tags["sweeplab.state"] == "FAIL"
    assert killed.data.tags["sweeplab.reason"].startswith("worker lost: no heartbeat for 3 s; queued again")
    assert len(children) == len(trials) == 3  # the lost trial's run, its retry's, the other trial's


def test_a_database_restart_costs_retries_not_the_study(postgres_cluster, tmp_path: Path) -> None:
    storage = postgres_cluster.create_database("restart_optuna")
    tracking = postgres_cluster.create_database("restart_mlflow")
    # Trials of a few seconds, enough of them that both workers are in one when the database goes down.
    heartbeat = "heartbeat: {interval: 1, grace: 4}\n"
    study_file = write_study(tmp_path, _study_text(8, heartbeat, max_epochs=80))
    workers = [_worker(study_file, storage, tracking) for _ in range(2)]

    def both_training(trials: list[FrozenTrial]) -> bool:
        return sum(t.state == TrialState.RUNNING for t in trials) == 2 and bool(trials[-1].intermediate_values)

    _wait_until(storage, workers, both_training)
    postgres_cluster.restart()  # every connection of both workers is cut in the middle of their trials
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output

    trials = _trials(storage)
    assert finished_trials(trials) == 8 and not [t for t in trials if not t.state.is_finished()]
    parent, children = _runs(tracking)
    assert parent.info.status == "FINISHED"
    assert not [r for r in children if r.info.status == "RUNNING"]


def _two_threads_at_once(call: Callable[[], object]) -> list[object]:
    """What ``call`` returns in two threads that call it at the same moment (an error in either is raised)."""
    import threading

    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            results.append(call())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "journal"])
def test_a_queued_trial_is_taken_by_one_thread_only(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    # Optuna takes a queued trial by reading that it is WAITING, then marking it RUNNING; without a lock two
    # threads took the same one in about a quarter of the rounds on SQLite (and trained it twice).
    from sweeplab.run._storage import open_storage
    from sweeplab.spec._schema import Heartbeat

    url, _ = _stores(backend, tmp_path, request, "queue")
    study = optuna.create_study(storage=open_storage(url, Heartbeat(), None, lambda *_: None), study_name="queue")
    for round in range(50):
        study.enqueue_trial({"x": round})
        taken = [trial_id for trial_id in _two_threads_at_once(study._pop_waiting_trial_id) if trial_id is not None]
        assert len(taken) == 1, f"round {round}: both threads took trial {taken}"
        study.tell(study.trials[-1].number, state=TrialState.FAIL)


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_a_lost_trial_is_failed_and_queued_again_once(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    # Failing a stale trial reads that it is RUNNING, then marks it FAIL: without a lock on SQLite two workers
    # both failed it and queued its parameters twice.
    from sweeplab.run._recovery import StaleTrialRecovery
    from sweeplab.run._storage import open_storage
    from sweeplab.spec._schema import Heartbeat

    url, _ = _stores(backend, tmp_path, request, "lost")
    recovery = StaleTrialRecovery(lambda *_: None, max_retry=3, grace=2)
    storage = open_storage(url, Heartbeat(interval=1, grace=2), None, recovery)
    study = optuna.create_study(storage=storage, study_name="lost")
    for _ in range(3):
        lost = [study.ask() for _ in range(20)]  # after the first round, the last round's retries among them
        for trial in lost:
            storage.record_heartbeat(trial._trial_id)  # one beat, then the worker is gone
        time.sleep(3.2)  # past the grace period, in SQLite's whole seconds
        _two_threads_at_once(lambda: optuna.storages.fail_stale_trials(study))
        queued = [t.user_attrs[RETRY_OF_ATTR] for t in study.get_trials(states=(TrialState.WAITING,))]
        assert sorted(queued) == [t.number for t in lost], "a lost trial was queued again twice, or not at all"


def _assert_budget_exact_and_nothing_running(storage: str, tracking: str, n_trials: int) -> None:
    """The study's budget finished exactly, every trial that counts complete (an outage failed none for real),
    and no Optuna trial or MLflow run left running."""
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert finished_trials(trials) == n_trials, [(t.number, t.state, t.user_attrs) for t in trials]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n_trials
    assert not [t for t in trials if not t.state.is_finished()], [(t.number, t.state) for t in trials]
    parent, children = _runs(tracking)
    assert parent.info.status == "FINISHED"
    assert not [r.data.tags for r in children if r.info.status == "RUNNING"]


# Long enough that one worker cannot finish the budget (two trials) while the other is still starting: a tiny
# trial runs ~25 epochs a second, and CI saw one worker finish four 40-epoch trials, then two 150-epoch trials,
# before the other began its first (~20 s of start-up on a loaded machine).
OUTAGE_EPOCHS = 800


def _both_training(trials: list[FrozenTrial]) -> bool:
    return sum(t.state == TrialState.RUNNING for t in trials) == 2 and bool(trials[-1].intermediate_values)


def _assert_outage_waited_out(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output
        assert "Traceback" not in output
        assert output.count("unreachable") == 1 and output.count("reachable again") == 1, output  # said once


def test_a_database_outage_longer_than_the_grace_is_waited_out(postgres_cluster, tmp_path: Path) -> None:
    storage = postgres_cluster.create_database("outage_optuna")
    tracking = postgres_cluster.create_database("outage_mlflow")
    # Both stores down for twice the grace: every running trial is stale when the database is back.
    heartbeat = "heartbeat: {interval: 1, grace: 3, outage_limit: 120}\n"
    study_file = write_study(tmp_path, _study_text(2, heartbeat, max_epochs=OUTAGE_EPOCHS))
    workers = [_worker(study_file, storage, tracking) for _ in range(2)]
    _wait_until(storage, workers, _both_training)
    postgres_cluster.stop()
    time.sleep(6)
    postgres_cluster.start()

    _assert_outage_waited_out(workers)
    _assert_budget_exact_and_nothing_running(storage, tracking, 2)


def test_a_worker_gives_up_past_the_outage_limit_and_the_study_resumes(postgres_cluster, tmp_path: Path) -> None:
    storage = postgres_cluster.create_database("limit_optuna")
    tracking = postgres_cluster.create_database("limit_mlflow")
    heartbeat = "heartbeat: {interval: 1, grace: 2, outage_limit: 3}\n"
    study_file = write_study(tmp_path, _study_text(2, heartbeat, max_epochs=40))
    worker = _worker(study_file, storage, tracking)
    _wait_until(storage, [worker], lambda trials: bool(trials and trials[-1].intermediate_values))
    postgres_cluster.stop()
    try:
        output, _ = worker.communicate(timeout=60)
    finally:
        postgres_cluster.start()
    assert worker.returncode == 3, output  # EXIT_UNAVAILABLE
    assert "past heartbeat.outage_limit (3 s)" in output and "Traceback" not in output, output

    rerun = _worker(study_file, storage, tracking)  # the same command, once the database is back
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output
    _assert_budget_exact_and_nothing_running(storage, tracking, 2)


def _mlflow_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """``mlflow server`` on 127.0.0.1:``port`` over a SQLite file in ``folder``, serving artifacts; returns once it
    answers. Its own process group, so that killing it takes its workers along."""
    import urllib.request

    command = ["mlflow", "server", "--backend-store-uri", f"sqlite:///{folder}/server.db", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--artifacts-destination", str(folder / "artifacts")]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return server
        except OSError:
            time.sleep(0.5)
    _kill_group(server)
    raise AssertionError("mlflow server did not start")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    import os

    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_a_tracking_server_outage_is_waited_out(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage, tracking = f"sqlite:///{tmp_path}/optuna.db", f"http://127.0.0.1:{port}"
    heartbeat = "heartbeat: {interval: 1, grace: 3, outage_limit: 240}\n"
    study_file = write_study(tmp_path, _study_text(2, heartbeat, max_epochs=OUTAGE_EPOCHS))
    server = _mlflow_server(tmp_path, port)
    workers = [_worker(study_file, storage, tracking) for _ in range(2)]
    try:
        _wait_until(storage, workers, _both_training)
        _kill_group(server)  # every request of both workers' trials is refused from now on
        time.sleep(5)
        server = _mlflow_server(tmp_path, port)
        _assert_outage_waited_out(workers)
        _assert_budget_exact_and_nothing_running(storage, tracking, 2)
    finally:
        for worker in workers:
            worker.kill()
        _kill_group(server)
