"""Shared fixtures: every test writes its databases and data into its own temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
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


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Generated data goes to one folder per test session, never to the user's cache; session-scoped so that
    # module-scoped fixtures that run studies see it too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SWEEPLAB_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
        yield


def write_study(folder: Path, text: str, name: str = "study.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def pool_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Darcy generation with its process pool always allowed; records the size of every pool it starts."""
    import concurrent.futures
    from concurrent.futures import ProcessPoolExecutor

    from sweeplab.data import darcy

    # Tiny samples never pay for a pool on their own: lower the threshold so that workers=2 really starts one.
    monkeypatch.setattr(darcy, "_MIN_SERIAL_SECONDS_FOR_POOL", 0.0)
    sizes: list[int] = []

    class RecordingExecutor(ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            sizes.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", RecordingExecutor)
    return sizes
