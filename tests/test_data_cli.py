"""``sweeplab data generate`` and ``sweeplab data ls`` on tiny data sets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweeplab.cli import main
from sweeplab.data import dataset_identity, load_dataset

TINY = ["resolution=9", "fine_resolution=17", "n_train=4", "n_val=2", "n_test=2", "test_resolutions=[17]"]
TINY_PARAMS = {"resolution": 9, "fine_resolution": 17, "n_train": 4, "n_val": 2, "n_test": 2, "test_resolutions": [17]}


def _generate(data_dir: Path, *params: str, name: str = "darcy") -> int:
    return main(["data", "generate", name, *(f"--param={p}" for p in params), "--data-dir", str(data_dir)])


def test_generate_writes_the_data_set_once_and_reports_hash_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    identity = dataset_identity("darcy", TINY_PARAMS)
    path = tmp_path / f"darcy-{identity}.npz"
    assert _generate(tmp_path, *TINY) == 0
    first = capsys.readouterr().out
    assert f"darcy {identity}: generated in" in first and f"{path} (" in first
    modified = path.stat().st_mtime_ns

    assert _generate(tmp_path, *TINY) == 0
    assert f"darcy {identity}: already cached" in capsys.readouterr().out
    assert path.stat().st_mtime_ns == modified
    # What the command wrote is what a study loads: same file, same arrays.
    data = load_dataset("darcy", TINY_PARAMS, data_dir=tmp_path)
    assert data.x_train.shape == (4, 1, 9, 9) and data.test_at_resolution[17][1].shape == (2, 1, 17, 17)
    assert [p.name for p in tmp_path.glob("*.npz")] == [path.name]


def test_values_are_read_as_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 1e-3 is a float (YAML 1.1 would make it a string), [17] a list, lognormal a string.
    params = [*TINY, "tolerance=1e-3", "coefficient=lognormal", "solver=amg"]
    assert _generate(tmp_path, *params) == 0
    expected = {**TINY_PARAMS, "tolerance": 1e-3, "coefficient": "lognormal", "solver": "amg"}
    assert dataset_identity("darcy", expected) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["darcyy"], "unknown data set 'darcyy' (did you mean 'darcy'?)"),
        (
            ["darcy", "--param", "resolutoin=9"],
            "--param resolutoin: unknown parameter of darcy (did you mean 'resolution'?)",
        ),
        (["darcy", "--param", "alpha=rough"], "--param alpha: must be a valid number"),
        (["darcy", "--param", "resolution"], "--param 'resolution': expected NAME=VALUE"),
        (["darcy", "--param", "resolution=100"], "darcy: resolution 100 is not a subsample of fine_resolution 421"),
        (["burgers", "--param", "test_resolutions=[1000]"], "test resolution 1000 is not a subsample"),
        (["navier_stokes", "--param", "step=2"], "step and teacher_forcing apply to mode autoregressive only"),
    ],
)
def test_bad_names_and_values_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    assert main(["data", "generate", *arguments, "--data-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_every_problem_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _generate(tmp_path, "n_tran=3", "seed=-1") == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and "n_tran" in errors[0] and "seed" in errors[1]


def test_ls_lists_name_hash_changed_parameters_size_and_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "ls", "--data-dir", str(tmp_path)]) == 0
    assert "no cached data sets in" in capsys.readouterr().out

    _generate(tmp_path, *TINY)
    _generate(tmp_path, "resolution=32", "n_train=2", "n_val=1", "n_test=1", "dt=0.05", "batch_size=3", name="burgers")
    # A file from before files carried a record of their parameters is listed too.
    legacy = tmp_path / "darcy-0123456789abcdef.npz"
    np.savez(legacy, x_train=np.zeros(3, dtype=np.float32))
    capsys.readouterr()
    assert main(["data", "ls", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    burgers, darcy, legacy_line = (
        next(line for line in lines if key in line)
        for key in (
            dataset_identity("burgers", {"resolution": 32, "n_train": 2, "n_val": 1, "n_test": 1, "dt": 0.05}),
            dataset_identity("darcy", TINY_PARAMS),
            "0123456789abcdef",
        )
    )
    # Only what sets the data apart: changed parameters that change the data (not batch_size), and no defaults.
    assert "n_train=2, n_val=1, n_test=1, resolution=32, dt=0.05" in burgers and "batch_size" not in burgers
    assert "test_resolutions=[17]" in darcy and "alpha" not in darcy and "kB" in darcy
    assert "no record" in legacy_line
    assert lines.index(burgers) < lines.index(darcy)  # by name


def test_data_commands_load_neither_torch_nor_scipy_for_help_and_ls(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom sweeplab.cli import main\n"
        "status = main(['data', 'ls', '--data-dir', sys.argv[1]])\n"
        "heavy = [m for m in ('torch', 'pytorch_lightning', 'mlflow', 'scipy') if m in sys.modules]\n"
        "print('heavy:', ','.join(heavy), 'status:', status)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "heavy:  status: 0" in result.stdout, result.stdout
    for command in (["data", "--help"], ["data", "generate", "--help"]):
        shown = subprocess.run([sys.executable, "-m", "sweeplab", *command], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "usage: sweeplab data" in shown.stdout
