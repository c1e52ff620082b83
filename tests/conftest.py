"""Shared fixtures: every test writes its databases and data into its own temporary folder."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

# A complete, valid study small enough to run in seconds; tests derive bad variants from it. One torch thread:
# for tensors this small a second thread only adds synchronisation, which turns into long stalls when another
# process shares the cores.
TINY_STUDY = """\
name: tiny
objective:
  metric: val_rel_l2
  direction: minimize
data:
  name: darcy
  params: {fine_resolution: 33, resolution: 17, n_train: 16, n_val: 8, n_test: 8, seed: 0}
models:
  - name: fno2d
    params: {n_layers: 2, padding: 0, projection_width: 16}
    search:
      width: {choices: [4, 8]}
      modes: {low: 2, high: 4}
search:
  lr: {low: 1.0e-3, high: 1.0e-2, log: true}
  batch_size: 8
trainer:
  max_epochs: 2
  num_threads: 1
sampler: random
budget:
  n_trials: 3
"""

# Two contrastive architectures (labelled variants) on digits, one epoch each, two learning rates: a representation
# study in seconds, whose architectures each have a best trial.
TINY_CONTRASTIVE_STUDY = """\
name: tiny-contrastive
objective: {metric: val_probe_pre, direction: maximize}
data: {name: digits, params: {n_train: 300, n_val: 100, n_test: 100}}
models:
  - {name: contrastive_cnn, label: plain, params: {width: 8, n_blocks: 2, head: none, loss: simclr}}
  - {name: contrastive_cnn, label: projected, params: {width: 8, n_blocks: 2, head: mlp, projection_dim: 16}}
search: {lr: {choices: [3.0e-3, 1.0e-3]}, batch_size: 64}
trainer: {max_epochs: 1, num_threads: 1}
sampler: grid
pruner: none
"""


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Generated data goes to one folder per test session, never to the user's cache; session-scoped so that
    # module-scoped fixtures that run studies see it too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SWEEPLAB_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
        yield


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the test: for tiny tensors the intra-op pool costs more than it saves, and on busy
    shared cores a multi-threaded FFT of a 32 x 32 grid took ~1000x longer than one thread (measured)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def bare_trainer(**overrides: Any) -> Any:
    """A two-epoch CPU Trainer that only trains: no logger, checkpoints, progress bar, summary or sanity check."""
    import pytorch_lightning as pl

    settings: dict[str, Any] = {
        "max_epochs": 2,
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    return pl.Trainer(**(settings | overrides))


def mean_field_error(data_params: dict[str, Any]) -> float:
    """The validation relative L2 error of the best constant guess, the training mean field, on Darcy data with
    ``data_params``: what a model that learned nothing scores."""
    import numpy as np

    from sweeplab.data import load_dataset

    data = load_dataset("darcy", data_params)
    residual = (data.y_val - data.y_train.mean(axis=0, keepdims=True)).reshape(len(data.y_val), -1)
    norms = np.linalg.norm(data.y_val.reshape(len(data.y_val), -1), axis=1)
    return float(np.mean(np.linalg.norm(residual, axis=1) / norms))


def write_study(folder: Path, text: str, name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def pool_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Darcy generation with its process pool always allowed; records the size of every pool it starts."""
    import concurrent.futures
    from concurrent.futures import ProcessPoolExecutor

    from sweeplab.datagen import darcy

    # Tiny samples never pay for a pool on their own: lower the threshold so that workers=2 really starts one.
    monkeypatch.setattr(darcy, "_MIN_SERIAL_SECONDS_FOR_POOL", 0.0)
    sizes: list[int] = []

    class RecordingExecutor(ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            sizes.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", RecordingExecutor)
    return sizes


@dataclass(frozen=True)
class RecordedStudy:
    """A study that really ran (TINY_STUDY): its file, stores and outcome."""

    study_file: Path
    storage: str
    tracking_uri: str
    outcome: Any


@pytest.fixture(scope="session")
def recorded_tiny_study(tmp_path_factory: pytest.TempPathFactory) -> RecordedStudy:
    """TINY_STUDY run once per session into its own SQLite stores, for tests that read what a run recorded."""
    from sweeplab.run import run_study
    from sweeplab.spec import load_study

    folder = tmp_path_factory.mktemp("recorded-tiny")
    study_file = write_study(folder, TINY_STUDY)
    storage, tracking_uri = f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db"
    outcome = run_study(load_study(study_file), storage=storage, tracking_uri=tracking_uri)
    return RecordedStudy(study_file, storage, tracking_uri, outcome)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster (tests/_postgres.py) for the session; skipped without PostgreSQL."""
    from _postgres import postgres_bin, throwaway_cluster

    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH")
    with throwaway_cluster(bin_dir) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Any]:
    """A throwaway single-node Slurm cluster (tests/_slurm.py); skipped without Slurm's programs or root."""
    from _slurm import missing_programs, throwaway_cluster

    if missing := missing_programs():
        pytest.skip(f"Slurm is not installed (apt-get install slurm-wlm munge): no {', '.join(missing)}")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's slurmd runs as root: run the Slurm tests as root")
    with throwaway_cluster() as cluster:
        yield cluster


@contextmanager
def ui_server(tracking_uri: str, cwd: Path | None = None) -> Iterator[str]:
    """`sweeplab ui` (an MLflow tracking server and its UI) on a free loopback port; yields its address once it
    answers."""
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from sweeplab.commands._ui import free_port

    port = free_port()
    command = [sys.executable, "-m", "sweeplab", "ui", "--tracking-uri", tracking_uri, "--port", str(port)]
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{address}/health", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and process.poll() is None, "the UI did not start"
                time.sleep(0.5)
        yield address
    finally:
        process.terminate()
        process.communicate(timeout=30)
