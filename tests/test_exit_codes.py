"""What a user sees when a command fails: one line naming the cause, the documented exit status, no traceback
(unless --debug or SWEEPLAB_DEBUG=1), and nothing written. Real commands in real processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, TINY_STUDY, write_study

from sweeplab._stores import PROBE_SECONDS, OutageWait, StoreUnavailableError, check_store
from sweeplab.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE


def _sweeplab(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeplab", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SWEEPLAB_DATA_DIR": str(folder / "data"), **env},
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nobody listens once the probe is closed


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody, root included, can create files in (the immutable attribute; root ignores modes)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_every_exit_status_is_documented() -> None:
    documented = re.search(r"Exit codes: (.*?)\.\n", (REPO / "README.md").read_text(), re.DOTALL)
    assert documented is not None
    statuses = {int(code) for code in re.findall(r"\b(\d+) ", documented.group(1))}
    assert statuses == {EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_UNAVAILABLE, EXIT_INTERRUPTED}


@pytest.mark.parametrize(
    "option, store, named",
    [
        ("--storage", "postgresql+psycopg://postgres@127.0.0.1:{port}/optuna", "study storage at postgresql"),
        ("--tracking-uri", "http://127.0.0.1:{port}", "MLflow tracking store at http://127.0.0.1"),
        ("--tracking-uri", "sqlite:///{read_only}/mlflow.db", "read-only/mlflow.db is not writable"),
    ],
)
def test_an_unreachable_or_read_only_store_is_named_in_one_line(
    tmp_path: Path, request: pytest.FixtureRequest, option: str, store: str, named: str
) -> None:
    read_only = request.getfixturevalue("read_only_folder") if "read_only" in store else None
    url = store.format(port=_closed_port(), read_only=read_only)
    study = write_study(tmp_path, TINY_STUDY)

    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=re.escape(named)):
        check_store(url, "study storage" if option == "--storage" else "MLflow tracking store")
    assert time.monotonic() - started < PROBE_SECONDS

    result = _sweeplab(tmp_path, "run", study.name, option, url)
    assert result.returncode == EXIT_UNAVAILABLE, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"study.yaml"} | ({read_only.name} if read_only else set())


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    study = write_study(tmp_path, TINY_STUDY)
    unreachable = f"http://127.0.0.1:{_closed_port()}"
    for debug in (["--debug"], []):
        env = {} if debug else {"SWEEPLAB_DEBUG": "1"}
        result = _sweeplab(tmp_path, *debug, "run", study.name, "--tracking-uri", unreachable, **env)
        assert result.returncode == 1 and "Traceback" in result.stderr, result.stderr
        assert "StoreUnavailableError: cannot reach MLflow tracking store" in result.stderr


@pytest.mark.parametrize(
    "command, status",
    [(["replay", "0123456789abcdef"], EXIT_INVALID), (["compare", "tiny"], EXIT_FAILED), (["studies"], EXIT_FAILED)],
)
def test_a_reading_command_writes_nothing_where_nothing_is(tmp_path: Path, command: list[str], status: int) -> None:
    result = _sweeplab(tmp_path, *command)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith(("error: no ", "no "))
    assert list(tmp_path.iterdir()) == []  # no mlruns/, no empty mlflow.db or optuna.db


def test_ctrl_c_during_start_up_exits_130_without_a_traceback(tmp_path: Path) -> None:
    # Data that take seconds to generate: the interrupt lands in start-up (imports, generation), before the
    # study's own interrupt handling is installed.
    study = write_study(tmp_path, TINY_STUDY.replace("fine_resolution: 33", "fine_resolution: 257"))
    process = subprocess.Popen(
        [sys.executable, "-m", "sweeplab", "run", study.name],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SWEEPLAB_DATA_DIR": str(tmp_path / "data")},
    )
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED, output
    assert "interrupted" in output and "Traceback" not in output, output


def test_an_outage_is_told_once_and_given_up_past_its_limit() -> None:
    said: list[str] = []
    outage = OutageWait(limit=3, say=said.append)
    lost = ConnectionRefusedError("connection refused")
    started = time.monotonic()
    assert outage.pause("study storage", lost) is False  # waits 1 s
    assert outage.pause("study storage", lost) is False  # then 2 s, what is left of the limit
    with pytest.raises(StoreUnavailableError, match=r"study storage unreachable for \d s, past heartbeat.outage_limit"):
        outage.pause("study storage", lost)
    assert 3 <= time.monotonic() - started < 5
    assert len(said) == 1 and said[0].startswith("study storage unreachable (connection refused); waiting")
    with pytest.raises(StoreUnavailableError):  # given up for good: no second wait on the way out
        outage.pause("MLflow tracking store", lost)
    assert time.monotonic() - started < 5

    back = OutageWait(limit=60, say=said.append)
    back.recovered()  # no outage: nothing to say
    assert back.pause("study storage", lost) is False
    back.recovered()
    back.recovered()
    assert len(said) == 3 and said[2] == "stores reachable again after 1 s"
