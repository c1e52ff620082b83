"""Subnormal floats are flushed to zero while a trial trains on the CPU (``trainer.flush_denormal``, default on):
weights that decay towards zero become subnormal and made a trained FNO-1D's steps 1.6-2.3x slower (BENCHMARKS.md)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sweeplab.training._trial import flushing_subnormals

PROBE_MODULE = '''
import torch
from torch import nn

from sweeplab.training._trial import flushing_subnormals

FLUSHED: list[bool] = []


class SubnormalProbe(nn.Module):
    """A pointwise map that notes, at each training step, whether this thread treats a subnormal as zero."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.map = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            FLUSHED.append(flushing_subnormals())
        return self.map(x)
'''


@pytest.mark.parametrize("flush", [True, False])
def test_training_flushes_subnormals_as_the_study_says_and_restores_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flush: bool
) -> None:
    import importlib

    from sweeplab.run import run_study
    from sweeplab.spec import parse_study

    module = f"subnormal_probe_{flush}"
    (tmp_path / f"{module}.py").write_text(PROBE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    study = parse_study(
        textwrap.dedent(f"""\
        name: subnormals
        objective: {{metric: val_rel_l2}}
        data: {{name: darcy, params: {{fine_resolution: 33, resolution: 17, n_train: 16, n_val: 8, n_test: 8}}}}
        models: [{{target: "{module}:SubnormalProbe"}}]
        search: {{lr: 1.0e-2, batch_size: 8}}
        trainer: {{max_epochs: 2, num_threads: 1, flush_denormal: {str(flush).lower()}}}
        sampler: grid
        """),
        "subnormals.yaml",
    )
    assert not flushing_subnormals()
    run_study(study, f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db")
    recorded = importlib.import_module(module).FLUSHED
    assert len(recorded) == 4 and set(recorded) == {flush}  # 2 epochs of 2 batches
    assert not flushing_subnormals()  # the caller's thread is as it was
