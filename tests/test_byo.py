"""Bring your own model and data: a model class by import path, a task of your own, data from files, plugins,
the Python API. Real runs at tiny sizes; every bad input exits 2 naming file, line and field, nothing written."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, write_study

from sweeplab.cli import main
from sweeplab.record import REASON_ATTR
from sweeplab.spec import StudyError, load_study

# A user's operator, in a module outside sweeplab: typed keyword arguments after the injected channels.
USER_MODULE = '''
from typing import Literal

from torch import nn


class PointwiseNet(nn.Module):
    """Two 1x1 convolutions: the smallest operator there is."""

    def __init__(
        self, in_channels: int, out_channels: int, width: int = 8, activation: Literal["gelu", "tanh"] = "gelu"
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 1), nn.GELU() if activation == "gelu" else nn.Tanh(),
            nn.Conv2d(width, out_channels, 1),
        )

    def forward(self, x):
        return self.net(x)


class Exploding(PointwiseNet):
    def forward(self, x):
        raise RuntimeError("the user's forward failed")


class NotAModel:
    def __init__(self, in_channels: int, out_channels: int) -> None:
        pass


class NoChannels(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()


class Forwarding(PointwiseNet):
    def __init__(self, in_channels: int, out_channels: int, **options) -> None:
        super().__init__(in_channels, out_channels, **options)
'''

DARCY = "{name: darcy, params: {fine_resolution: 33, resolution: 17, n_train: 16, n_val: 8, n_test: 8}}"


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """The user's module on sys.path under a name of its own (the checker caches what it read, by import path)."""
    name = "usernets_" + re.sub(r"\W", "_", request.node.name)
    folder = tmp_path / "userpkg"
    folder.mkdir()
    (folder / f"{name}.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    return name


def _study(folder: Path, models: str, data: str = DARCY, extra: str = "") -> Path:
    text = f"""\
name: byo
objective: {{metric: val_rel_l2}}
data: {data}
models:
{textwrap.indent(textwrap.dedent(models), "  ")}
search: {{lr: 1.0e-2, batch_size: 8}}
trainer: {{max_epochs: 1, num_threads: 1}}
sampler: grid
storage: sqlite:///{folder}/optuna.db
tracking: {{uri: "sqlite:///{folder}/mlflow.db"}}
{extra}"""
    return write_study(folder, text)


def _invalid(capsys: pytest.CaptureFixture[str], study: Path) -> str:
    assert main(["validate", str(study)]) == 2
    assert not (study.parent / "optuna.db").exists() and not (study.parent / "mlflow.db").exists()
    return capsys.readouterr().err


def test_a_model_by_import_path_trains_next_to_fno2d_and_is_compared(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file = _study(
        tmp_path,
        f"""\
        - {{name: fno2d, params: {{width: 4, modes: 3, n_layers: 1, padding: 0, projection_width: 8}}}}
        - target: {user_module}:PointwiseNet
          label: mine
          search: {{width: {{choices: [6]}}, activation: {{choices: [tanh]}}}}
        """,
    )
    assert main(["validate", "--verbose", str(study_file)]) == 0
    out = capsys.readouterr().out
    assert f"{user_module}:PointwiseNet: parameters read from its source, not imported" in out
    assert main(["run", str(study_file)]) == 0
    capsys.readouterr()
    assert main(["compare", str(study_file), "--format", "markdown"]) == 0
    table = capsys.readouterr().out
    assert "fno2d" in table and "mine" in table


def test_validation_reads_the_users_source_without_importing_torch(tmp_path: Path, user_module: str) -> None:
    study_file = _study(tmp_path, f"- {{target: {user_module}:PointwiseNet, params: {{width: 4}}}}")
    probe = (
        "import sys; from sweeplab.spec import load_study; "
        f"study = load_study({str(study_file)!r}); print(study.models[0].key, 'torch' in sys.modules)"
    )
    env_path = f"{tmp_path / 'userpkg'}:{REPO / 'platform'}:{REPO / 'modules'}"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env={"PYTHONPATH": env_path}, check=True
    )
    assert result.stdout.split() == ["PointwiseNet", "False"]


def test_kwargs_are_read_by_importing_and_said_so(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file = _study(tmp_path, f"- {{target: {user_module}:Forwarding, params: {{width: 4, anything: 1}}}}")
    assert main(["validate", "--verbose", str(study_file)]) == 0
    assert "Forwarding.__init__ takes **options: imported" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ("{target: 'nowhere_at_all.nets:Net'}", "models[0].target", "cannot find module 'nowhere_at_all.nets'"),
        ("{target: '{module}:Missing'}", "models[0].target", "no class 'Missing'"),
        ("{target: '{module}:NotAModel'}", "models[0].target", "is not a torch.nn.Module"),
        ("{target: '{module}:NoChannels'}", "models[0].target", "lacks in_channels and out_channels"),
        ("{target: '{module}:PointwiseNet', params: {depth: 3}}", "models[0].params.depth", "unknown parameter"),
        ("{target: '{module}:PointwiseNet', params: {width: wide}}", "models[0].params.width", "valid integer"),
        (
            "{target: '{module}:PointwiseNet', search: {activation: {choices: [relu]}}}",
            "models[0].search.activation.choices[0]",
            "'gelu' or 'tanh'",
        ),
        ("{target: 'not a path'}", "models[0].target", "should match pattern"),
        ("{target: '{module}:PointwiseNet', task: 'nowhere.tasks:Task'}", "models[0].task", "cannot import"),
        ("{target: '{module}:PointwiseNet', task: '{module}:PointwiseNet'}", "models[0].task", "not a subclass"),
    ],
)
def test_bad_models_by_import_path(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str], entry: str, field: str, message: str
) -> None:
    study_file = _study(tmp_path, "- " + entry.replace("{module}", user_module))
    error = _invalid(capsys, study_file)
    assert f"study.yaml:5 {field}: " in error, error
    assert message in error, error


def test_an_exception_inside_a_user_model_fails_its_trial_only(tmp_path: Path, user_module: str) -> None:
    import optuna

    from sweeplab.run import run_study

    study_file = _study(
        tmp_path,
        f"""\
        - {{target: {user_module}:Exploding, label: exploding}}
        - {{target: {user_module}:PointwiseNet, label: fine}}
        """,
    )
    outcome = run_study(load_study(study_file))
    assert outcome.best_model == "fine"
    trials = optuna.load_study(study_name="byo", storage=f"sqlite:///{tmp_path}/optuna.db").trials
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and "the user's forward failed" in failed[0].user_attrs[REASON_ATTR]


def test_a_task_of_ones_own(tmp_path: Path, user_module: str) -> None:
    """A physics-style extra loss term: a subclass of the operator task with one more metric."""
    module = tmp_path / "userpkg" / f"{user_module}_task.py"
    module.write_text(
        textwrap.dedent(
            """
            from sweeplab_modules.tasks.operator import OperatorLearning


            class SmoothOperator(OperatorLearning):
                metrics = (
                    "train_loss", "val_loss", "val_rel_l2", "val_roughness", "test_loss", "test_rel_l2",
                )

                def shared_step(self, batch, stage, suffix=""):
                    loss = super().shared_step(batch, stage, suffix)
                    if stage != "test":
                        x, _ = batch
                        roughness = self.model(self.input_normalizer.encode(x)).diff(dim=-1).abs().mean()
                        self.log_epoch_mean(f"{stage}_roughness", roughness, len(x))
                        if loss is not None:
                            loss = loss + 1e-3 * roughness
                    return loss
            """
        )
    )
    study_file = _study(
        tmp_path,
        f"- {{target: {user_module}:PointwiseNet, task: '{user_module}_task:SmoothOperator'}}",
        extra="",
    )
    study_file.write_text(study_file.read_text().replace("metric: val_rel_l2", "metric: val_roughness"))
    study = load_study(study_file)
    assert study.task.name == f"{user_module}_task:SmoothOperator"
    from sweeplab.run import run_study

    outcome = run_study(study)
    assert outcome.best_values is not None and outcome.best_values[0] >= 0


def test_an_unknown_metric_of_a_users_task_is_reported(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file = _study(tmp_path, f"- {{target: {user_module}:PointwiseNet}}")
    study_file.write_text(study_file.read_text().replace("metric: val_rel_l2", "metric: val_nonsense"))
    assert "'val_nonsense' is not logged by PointwiseNet" in _invalid(capsys, study_file)


def test_study_errors_are_raised_by_the_python_api_too(tmp_path: Path) -> None:
    with pytest.raises(StudyError):
        load_study(_study(tmp_path, "- {target: 'nowhere_at_all.nets:Net'}"))
