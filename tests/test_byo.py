"""Bring your own model and data: a model class by import path, a task of your own, data from files, plugins,
the Python API. Real runs at tiny sizes; every bad input exits 2 naming file, line and field, nothing written."""

from __future__ import annotations

import os
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
    """The user's module on sys.path under a name of its own (Python keeps an imported module by its name)."""
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


def test_a_model_by_import_path_trains_next_to_fno2d_on_the_users_mat_file_and_is_compared(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import scipy.io

    coefficient, solution = _fields(n=16, size=17)
    scipy.io.savemat(tmp_path / "darcy.mat", {"coeff": coefficient, "sol": solution})
    data = (
        "{name: files, params: {path: darcy.mat, input: coeff, output: sol, spatial_dims: 2, resolution: 9, "
        "n_train: 8, n_val: 4, n_test: 4}}"
    )
    study_file = _study(
        tmp_path,
        f"""\
        - {{name: fno2d, params: {{width: 4, modes: 3, n_layers: 1, padding: 0, projection_width: 8}}}}
        - target: {user_module}:PointwiseNet
          label: mine
          search: {{width: {{choices: [6]}}, activation: {{choices: [tanh]}}}}
        """,
        data,
    )
    assert main(["validate", "--verbose", str(study_file)]) == 0
    out = capsys.readouterr().out
    assert f"{user_module}:PointwiseNet: parameters read from its source, not imported" in out
    assert main(["run", str(study_file)]) == 0
    assert "2 trials finished" in capsys.readouterr().err
    assert main(["compare", str(study_file), "--format", "markdown"]) == 0
    table = capsys.readouterr().out
    assert "| fno2d |" in table and "| mine |" in table, table


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


def test_an_edited_model_source_is_read_again(tmp_path: Path, user_module: str) -> None:
    study_file = _study(tmp_path, f"- {{target: {user_module}:PointwiseNet, params: {{width: 4}}}}")
    assert load_study(study_file).models[0].fixed == {"width": 4}
    module = tmp_path / "userpkg" / f"{user_module}.py"
    module.write_text(
        module.read_text().replace("width: int = 8", "channels: int = 8").replace("(width)", "(channels)")
    )
    os.utime(module, ns=(0, module.stat().st_mtime_ns + 10**9))  # a later edit within the clock's resolution
    with pytest.raises(StudyError, match="unknown parameter"):
        load_study(study_file)


def test_kwargs_and_inherited_constructors_are_read_by_importing_and_said_so(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    study_file = _study(
        tmp_path,
        f"""\
        - {{target: {user_module}:Forwarding, params: {{width: 4, anything: 1}}}}
        - {{target: {user_module}:Exploding, params: {{width: 4}}}}
        """,
    )
    assert main(["validate", "--verbose", str(study_file)]) == 0
    out = capsys.readouterr().out
    assert f"Forwarding: parameters Forwarding.__init__ takes **options: imported {user_module}" in out
    assert "Exploding inherits its __init__: imported" in out


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


def test_an_exception_inside_a_user_model_fails_its_trial_only_and_the_python_api_says_so(
    tmp_path: Path, user_module: str
) -> None:
    """Also the notebook API: a dict in, the outcome (best trial, MLflow run ids) out."""
    import optuna
    import yaml

    import sweeplab

    study_file = _study(
        tmp_path,
        f"""\
        - {{target: {user_module}:Exploding, label: exploding}}
        - {{target: {user_module}:PointwiseNet, label: fine}}
        """,
    )
    as_dict = yaml.safe_load(study_file.read_text())
    assert sweeplab.load_study(as_dict).models[1].key == "fine"
    outcome = sweeplab.run_study(as_dict)
    assert outcome.best_model == "fine" and outcome.finished == 2
    assert set(outcome.run_ids) == {0, 1} and outcome.best_run_id == outcome.run_ids[outcome.best_trial]
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


# -- data from files ---------------------------------------------------------------------------------------------------
def _fields(n: int = 12, size: int = 9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A coefficient and a solution-like field, (n, size, size), float64 as MATLAB writes them."""
    rng = np.random.default_rng(seed)
    coefficient = rng.random((n, size, size))
    return coefficient, np.cumsum(coefficient, axis=1)


def _load(params: dict, tmp_path: Path):  # type: ignore[no-untyped-def]
    from sweeplab.data import load_dataset
    from sweeplab.data._files import FilesParams, file_problems

    validated = FilesParams.model_validate(params, context={"base": tmp_path})
    assert file_problems(validated) == []
    return load_dataset("files", validated.model_dump(mode="json"), data_dir=tmp_path / "cache")


def _write_mat73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 behind a 512-byte header, arrays column-major (transposed)."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as handle:
        for key, array in arrays.items():
            handle.create_dataset(key, data=array.T)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Sun Dec  6 00:00:00 2026 HDF5 schema 1.00 ."
    with open(path, "r+b") as raw:
        raw.write(header.ljust(116) + b"\0" * 8 + b"\x00\x02IM")


def test_mat_v5_and_v73_give_the_same_arrays_subsampled_as_the_fno_scripts(tmp_path: Path) -> None:
    import scipy.io

    coefficient, solution = _fields(size=9)
    scipy.io.savemat(tmp_path / "v5.mat", {"coeff": coefficient, "sol": solution})
    _write_mat73(tmp_path / "v73.mat", {"coeff": coefficient, "sol": solution})
    split = {"n_train": 8, "n_val": 2, "n_test": 2, "input": "coeff", "output": "sol", "spatial_dims": 2}
    v5 = _load({"path": "v5.mat", "resolution": 5, **split}, tmp_path)
    v73 = _load({"path": "v73.mat", "resolution": 5, **split}, tmp_path)
    # the FNO Darcy script: x[:ntrain, ::r, ::r][:, :s, :s] with r = (421 - 1) / (s - 1); the test set last
    expected = coefficient[:8, ::2, ::2][:, None].astype(np.float32)
    np.testing.assert_array_equal(v5.x_train, expected)
    np.testing.assert_array_equal(v73.x_train, expected)
    np.testing.assert_array_equal(v73.y_test, solution[10:, ::2, ::2][:, None].astype(np.float32))
    assert isinstance(v5.x_train, np.memmap)  # memory-mapped, not read into each worker's memory
    assert v5.identity != v73.identity  # different bytes


def test_pdebench_layouts_1d_tensor_and_2d_groups_per_sample(tmp_path: Path) -> None:
    import h5py

    rng = np.random.default_rng(1)
    tensor = rng.random((10, 5, 16))  # PDEBench 1D: (samples, time, x), e.g. 1D_Advection_Sols_beta0.1.hdf5
    with h5py.File(tmp_path / "1D_Advection.hdf5", "w") as handle:
        handle["tensor"] = tensor.astype(np.float32)
        handle["x-coordinate"] = np.linspace(0, 1, 16)
        handle["t-coordinate"] = np.linspace(0, 2, 6)
    data = _load(
        {
            "path": "1D_Advection.hdf5",
            "input": "tensor",
            "output": "tensor",
            "layout": "pdebench",
            "spatial_dims": 1,
            "input_steps": [0],
            "output_steps": [-1],
            "resolution": 8,
            "n_train": 6,
            "n_val": 2,
            "n_test": 2,
        },
        tmp_path,
    )
    np.testing.assert_array_equal(data.x_train, tensor[:6, [0], ::2].astype(np.float32))
    np.testing.assert_array_equal(data.y_val, tensor[6:8, [4], ::2].astype(np.float32))
    # PDEBench 2D diffusion-reaction: one group per sample, "data" (time, x, y, channels)
    fields = rng.random((6, 3, 8, 8, 2))
    with h5py.File(tmp_path / "2D_diff-react.h5", "w") as handle:
        for index, sample in enumerate(fields):
            handle[f"{index:04d}/data"] = sample.astype(np.float32)
            handle[f"{index:04d}/grid/x"] = np.linspace(-1, 1, 8)
    data = _load(
        {
            "path": "2D_diff-react.h5",
            "input": "data",
            "output": "data",
            "layout": "pdebench",
            "spatial_dims": 2,
            "input_steps": [0],
            "output_steps": [1, 2],
            "n_train": 4,
            "n_val": 1,
            "n_test": 1,
        },
        tmp_path,
    )
    assert data.x_train.shape == (4, 2, 8, 8) and data.y_train.shape == (4, 4, 8, 8)
    np.testing.assert_array_equal(data.y_test[0, 2], fields[5, 2, :, :, 0].astype(np.float32))


def test_npz_and_pt_files_one_per_split_and_identity_is_the_content(tmp_path: Path) -> None:
    import torch

    coefficient, solution = _fields(n=6)
    for split, rows in (("train", slice(0, 4)), ("val", slice(4, 5)), ("test", slice(5, 6))):
        np.savez(tmp_path / f"{split}.npz", a=coefficient[rows], u=solution[rows])
        torch.save(
            {"a": torch.from_numpy(coefficient[rows]), "u": torch.from_numpy(solution[rows])}, tmp_path / f"{split}.pt"
        )
    params = {"input": "a", "output": "u", "spatial_dims": 2}
    npz = _load({"path": {s: f"{s}.npz" for s in ("train", "val", "test")}, **params}, tmp_path)
    pt = _load({"path": {s: f"{s}.pt" for s in ("train", "val", "test")}, **params}, tmp_path)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(npz, f"x_{split}"), getattr(pt, f"x_{split}"))
    assert npz.x_train.shape == (4, 1, 9, 9) and npz.y_test.shape == (1, 1, 9, 9)
    # a moved file is the same data; other loading parameters or other bytes are not
    (tmp_path / "moved").mkdir()
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.npz").rename(tmp_path / "moved" / f"{split}.npz")
    moved = _load({"path": {s: f"moved/{s}.npz" for s in ("train", "val", "test")}, **params}, tmp_path)
    assert moved.identity == npz.identity
    strided = _load(
        {"path": {s: f"moved/{s}.npz" for s in ("train", "val", "test")}, "resolution": 5, **params}, tmp_path
    )
    assert strided.identity != npz.identity


def test_a_shared_file_split_at_random_by_seed(tmp_path: Path) -> None:
    coefficient, solution = _fields(n=10)
    np.savez(tmp_path / "all.npz", a=coefficient, u=solution)
    params = {
        "path": "all.npz",
        "input": "a",
        "output": "u",
        "spatial_dims": 2,
        "n_train": 6,
        "n_val": 2,
        "n_test": 2,
        "shuffle": True,
    }
    first, again, other = (_load(params | {"seed": seed}, tmp_path) for seed in (0, 0, 1))
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert first.identity != other.identity
    stored = coefficient.astype(np.float32)
    rows = sorted(int(np.argwhere((stored == x[0]).all(axis=(1, 2)))[0, 0]) for x in first.x_train)
    assert rows != list(range(6)) and len(set(rows)) == 6


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ("path: missing.mat", "data.params.path", "no such file"),
        ("path: {train: darcy.mat, test: missing.npz}", "data.params.path.test", "no such file"),
        ("path: darcy.mat, input: kappa", "data.params.input", "has no field 'kappa' (fields: coeff, sol"),
        ("path: darcy.mat, spatial_dims: 3", "data.params.input", "wants (samples, *grid) or (samples, *grid, ch"),
        ("path: darcy.mat, resolution: 4", "data.params.resolution", "not a subsample by stride of the files' 9"),
        ("path: darcy.mat, n_train: 20", "data.params.n_train", "n_train 20 + n_val 2 + n_test 2 > the 12 samples"),
        ("path: darcy.mat, input_steps: [0]", "data.params.input_steps", "no time or channel axis"),
        ("path: nan.mat", "data.params.output", "'sol' of nan.mat is not finite at sample 3 (a train sample)"),
        ("path: darcy.mat, n_test: 0", "data.params.n_test", "greater than or equal to 1"),
    ],
)
def test_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], params: str, field: str, message: str) -> None:
    import scipy.io

    coefficient, solution = _fields()
    scipy.io.savemat(tmp_path / "darcy.mat", {"coeff": coefficient, "sol": solution})
    solution[3, 2, 2] = np.nan
    scipy.io.savemat(tmp_path / "nan.mat", {"coeff": coefficient, "sol": solution})
    defaults = {"input": "coeff", "output": "sol", "spatial_dims": "2", "n_train": "8", "n_val": "2", "n_test": "2"}
    given = dict(part.split(": ", 1) for part in re.split(r", (?![^{]*})", params))
    data = "{name: files, params: {" + ", ".join(f"{k}: {v}" for k, v in (defaults | given).items()) + "}}"
    study_file = _study(tmp_path, "- {name: fno2d, params: {width: 4, modes: 3, n_layers: 1}}", data)
    error = _invalid(capsys, study_file)
    assert f"study.yaml:3 {field}: " in error and message in error, error
    assert not (tmp_path / "cache").exists()


# -- plugins -----------------------------------------------------------------------------------------------------------
def test_the_example_plugin_installs_and_runs_a_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/plugin, installed with ``pip install -e`` into a throwaway environment that sees this one's
    packages (the shared environment is left alone): its model and data set are listed with their package and
    a study runs with them. No pip of its own: this environment's pip and setuptools build it, offline."""
    import shutil

    import yaml

    source = shutil.copytree(REPO / "examples" / "plugin", tmp_path / "plugin")  # the build writes egg-info there
    environment = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(environment)], check=True
    )
    python = str(environment / "bin" / "python")
    install = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-e"]
    subprocess.run([*install, str(source)], check=True, capture_output=True)
    env = {
        "PATH": f"{environment / 'bin'}:/usr/bin:/bin",
        "PYTHONPATH": f"{REPO / 'platform'}:{REPO / 'modules'}",
        "SWEEPLAB_DATA_DIR": str(tmp_path / "data"),
        "HOME": str(tmp_path),
    }

    def sweeplab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([python, "-m", "sweeplab", *args], capture_output=True, text=True, env=env, cwd=tmp_path)

    listed = sweeplab("models")
    assert listed.returncode == 0, listed.stderr
    assert any("conv_operator1d" in line and "sweeplab-plugin-example" in line for line in listed.stdout.splitlines())
    available = sweeplab("data", "ls", "--available")
    assert any("heat1d" in line and "sweeplab-plugin-example" in line for line in available.stdout.splitlines())
    # The study runs in this process (torch is loaded already), on the plugin as the environment installed it.
    import site

    from sweeplab.data import DATASETS
    from sweeplab.run import run_study
    from sweeplab_modules.registry import MODELS

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    site.addsitedir(str(next(environment.glob("lib/python*/site-packages"))))
    MODELS.reload()
    DATASETS.reload()
    try:
        study = (source / "study.yaml").read_text()
        for long, short in (
            ("n_train: 200, n_val: 50, n_test: 50", "n_train: 20, n_val: 10, n_test: 10"),
            ("max_epochs: 20", "max_epochs: 1, num_threads: 1"),
            ("n_trials: 8", "n_trials: 2"),
            ("lr: {low: 1.0e-4, high: 1.0e-2, log: true}", "lr: 1.0e-3"),
        ):
            study = study.replace(long, short)
        study += f"sampler: grid\nstorage: sqlite:///{tmp_path}/optuna.db\ntracking: {{uri: 'sqlite:///{tmp_path}/mlflow.db'}}\n"
        outcome = run_study(yaml.safe_load(study))
        assert outcome.finished == 2 and outcome.best_model in ("conv_operator1d", "fno1d")
    finally:
        monkeypatch.undo()
        MODELS.reload()
        DATASETS.reload()


def test_the_example_data_set_is_the_exact_heat_solution() -> None:
    sys.path.insert(0, str(REPO / "examples" / "plugin"))
    try:
        from sweeplab_plugin_example.data import Heat1dParams, generate_heat1d
    finally:
        sys.path.remove(str(REPO / "examples" / "plugin"))
    params = Heat1dParams(resolution=64, n_train=4, n_val=1, n_test=1, viscosity=0.02, time=0.3)
    arrays = generate_heat1d(params)
    k = np.fft.rfftfreq(64, d=1 / 64)
    decayed = np.fft.irfft(np.fft.rfft(arrays["x_train"]) * np.exp(-0.02 * (2 * np.pi * k) ** 2 * 0.3), n=64)
    np.testing.assert_allclose(arrays["y_train"], decayed, atol=1e-5)


def _fake_distribution(site: Path, name: str, entry_points: str) -> None:
    """An installed distribution as importlib.metadata finds it: a .dist-info folder on sys.path."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_a_plugin_name_clashing_with_a_built_in_is_an_error_naming_both_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sweeplab.data import DATASETS
    from sweeplab_modules.registry import MODELS

    _fake_distribution(
        tmp_path / "site",
        "clashing-plugin",
        "[sweeplab.models]\nfno2d = clashing_plugin:MODEL\n\n[sweeplab.datasets]\ndarcy = clashing_plugin:DATA\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    MODELS.reload()
    DATASETS.reload()
    try:
        message = "model 'fno2d' of package 'clashing-plugin' clashes with the one of package 'sweeplab'"
        error = _invalid(capsys, _study(tmp_path, "- {name: fno2d, params: {width: 4}}"))  # the first lookup
        assert f"study.yaml:5 models[0].name: {message}" in error and "study.yaml:3 data.name:" in error, error
        assert main(["models"]) == 2
        assert message in capsys.readouterr().err
        assert main(["data", "ls", "--available"]) == 2
        assert "data set 'darcy' of package 'clashing-plugin' clashes" in capsys.readouterr().err
    finally:
        monkeypatch.undo()
        MODELS.reload()
        DATASETS.reload()
