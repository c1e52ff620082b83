"""The data cache: identity, reuse, atomic writes, detection of damaged files, and import hygiene."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

import sweeplab.data
from sweeplab.data import (
    DATASETS,
    OperatorData,
    _cache,
    dataset_identity,
    default_data_dir,
    load_dataset,
)
from sweeplab.datagen import darcy

TINY = {"n_train": 4, "n_val": 2, "n_test": 3, "fine_resolution": 17, "resolution": 9, "seed": 1}
ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@pytest.fixture
def generator_calls(monkeypatch: pytest.MonkeyPatch) -> list[darcy.DarcyParams]:
    """Counts calls of the Darcy generator (looked up by import path, so patching the module works)."""
    calls: list[darcy.DarcyParams] = []
    real_generator = darcy.generate_darcy

    def counting_generator(params: darcy.DarcyParams) -> dict[str, np.ndarray]:
        calls.append(params)
        return real_generator(params)

    monkeypatch.setattr(darcy, "generate_darcy", counting_generator)
    return calls


def _cache_file(data_dir: Path) -> Path:
    (path,) = data_dir.glob("darcy-*.npz")
    return path


def _assert_same_data(first: OperatorData, second: OperatorData) -> None:
    for key in ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(first, key), getattr(second, key))


def test_second_load_reads_the_file_instead_of_generating(tmp_path: Path, generator_calls: list) -> None:
    first = load_dataset("darcy", TINY, data_dir=tmp_path)
    path = _cache_file(tmp_path)
    assert path.name == f"darcy-{first.identity}.npz"
    modified = path.stat().st_mtime_ns

    second = load_dataset("darcy", TINY, data_dir=tmp_path)
    assert len(generator_calls) == 1
    assert path.stat().st_mtime_ns == modified
    assert second.identity == first.identity == dataset_identity("darcy", TINY)
    _assert_same_data(first, second)
    assert first.x_train.shape == (4, 1, 9, 9) and first.y_test.shape == (3, 1, 9, 9)
    assert all(getattr(first, key).dtype == np.float32 for key in ARRAY_KEYS)


def test_loaded_data_equal_the_generator_output(tmp_path: Path) -> None:
    generated = darcy.generate_darcy(darcy.DarcyParams(**TINY))
    load_dataset("darcy", TINY, data_dir=tmp_path)
    loaded = load_dataset("darcy", TINY, data_dir=tmp_path)
    for key in ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(loaded, key), generated[key])


OUTPUT_CHANGES = {
    "n_train": 5,
    "n_val": 3,
    "n_test": 4,
    "resolution": 17,
    "fine_resolution": 33,
    "alpha": 2.5,
    "tau": 7.0,
    "coefficient": "lognormal",
    "a_high": 10.0,
    "a_low": 4.0,
    "seed": 2,
    "solver": "amg",
    "tolerance": 1e-6,
    "test_resolutions": [17],
}


def test_every_output_relevant_parameter_is_covered_here() -> None:
    neutral = {"workers"}
    with_its_solver = {"dcdm_model"}  # test_identity_changes_with_the_dcdm_model
    assert set(darcy.DarcyParams.model_fields) - neutral - with_its_solver == set(OUTPUT_CHANGES)


def test_identity_changes_with_the_dcdm_model() -> None:
    with_model = {**TINY, "solver": "dcdm", "dcdm_model": "models:/dcdm@best"}
    other_model = {**with_model, "dcdm_model": "models:/dcdm/2"}
    assert dataset_identity("darcy", with_model) != dataset_identity("darcy", other_model)


@pytest.mark.parametrize(("field", "value"), OUTPUT_CHANGES.items())
def test_identity_changes_with_each_output_relevant_parameter(field: str, value: Any) -> None:
    assert dataset_identity("darcy", {**TINY, field: value}) != dataset_identity("darcy", TINY)


def test_identity_ignores_workers_and_fills_in_defaults() -> None:
    base = dataset_identity("darcy", TINY)
    assert dataset_identity("darcy", {**TINY, "workers": 7}) == base
    assert dataset_identity("darcy", {**TINY, "workers": None}) == base
    assert dataset_identity("darcy", {}) == dataset_identity("darcy", darcy.DarcyParams().model_dump())
    assert dataset_identity("darcy", {"alpha": 2}) == dataset_identity("darcy", {"alpha": 2.0})
    assert len(base) == 16 and int(base, 16) >= 0


# Identities of data sets cached before the generators moved from sweeplab.data to sweeplab.datagen: the key
# hashes name, parameters and version, never where the generator lives, so these files keep their names.
KNOWN_IDENTITIES = [
    ("darcy", TINY, "d9df28f612b3da8c"),
    ("darcy", {}, "fd96fad5ec9d7e83"),
    ("burgers", {}, "b84efeb1c7855caa"),
    ("navier_stokes", {}, "10cd0e4dbdaf47d7"),
    ("digits", {}, "16540a34f0b848ea"),
    ("mnist5k", {}, "42d45378d319026a"),
    ("feature_strengths", {}, "a4c3695ef91fa9af"),
    ("laplace_denoising", {}, "ef6252ea9baccc3a"),
    ("mnist5k_denoising", {}, "383b0bab07bc101a"),
    ("room_acoustics", {}, "ca3bfbdc778cd27f"),
    ("kdv", {}, "d895563e071e6817"),
    ("kuramoto_sivashinsky", {}, "bde4eaf9c0ad81f3"),
    ("dcdm_darcy", {}, "94f11c9afbfd9e6d"),
]


@pytest.mark.parametrize(("name", "params", "identity"), KNOWN_IDENTITIES)
def test_identities_of_cached_data_sets_stay_the_same(name: str, params: dict[str, Any], identity: str) -> None:
    assert dataset_identity(name, params) == identity


def test_known_identities_cover_every_generated_data_set() -> None:
    generated = {name for name, entry in DATASETS.items() if not entry.reads_files}
    assert {name for name, _, _ in KNOWN_IDENTITIES} == generated


def test_identity_changes_with_the_entry_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = dataset_identity("darcy", TINY)
    monkeypatch.setitem(DATASETS, "darcy", dataclasses.replace(DATASETS["darcy"], version="999"))  # type: ignore[arg-type]
    assert dataset_identity("darcy", TINY) != before


def test_workers_do_not_change_the_file(tmp_path: Path, generator_calls: list) -> None:
    load_dataset("darcy", {**TINY, "workers": 1}, data_dir=tmp_path)
    load_dataset("darcy", {**TINY, "workers": 2}, data_dir=tmp_path)
    assert len(generator_calls) == 1


def test_unknown_data_set_and_bad_params_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="darcy"):
        load_dataset("darcyy", data_dir=tmp_path)
    with pytest.raises(ValidationError):
        load_dataset("darcy", {**TINY, "n_tran": 3}, data_dir=tmp_path)
    with pytest.raises(ValidationError):
        dataset_identity("darcy", {"resolution": 10})
    assert list(tmp_path.iterdir()) == []


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_data_byte(path: Path) -> None:
    content = bytearray(path.read_bytes())
    content[len(content) // 3] ^= 0xFF  # inside x_val's data, far from any header
    path.write_bytes(bytes(content))


def _drop_an_array(path: Path) -> None:
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files if key != "y_test"}
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def _store_wrong_shapes_with_a_valid_checksum(path: Path) -> None:
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in ARRAY_KEYS}
    arrays["x_train"] = arrays["x_train"][:3]
    arrays["y_train"] = arrays["y_train"][:3]
    with open(path, "wb") as file:
        np.savez(file, **arrays, sha256=np.array(_cache._checksum(arrays)))


@pytest.mark.parametrize(
    "damage", [_truncate, _flip_a_data_byte, _drop_an_array, _store_wrong_shapes_with_a_valid_checksum]
)
def test_damaged_file_is_reported_and_regenerated(tmp_path: Path, generator_calls: list, damage: Any) -> None:
    original = load_dataset("darcy", TINY, data_dir=tmp_path)
    path = _cache_file(tmp_path)
    intact_bytes = path.read_bytes()
    damage(path)

    with pytest.warns(RuntimeWarning, match="damaged.*regenerating"):
        reloaded = load_dataset("darcy", TINY, data_dir=tmp_path)
    assert len(generator_calls) == 2
    _assert_same_data(original, reloaded)
    assert path.read_bytes() == intact_bytes  # rewritten in full

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset("darcy", TINY, data_dir=tmp_path)
    assert len(generator_calls) == 2


def test_no_single_flipped_byte_can_produce_wrong_data(tmp_path: Path) -> None:
    """Every byte position either damages the file visibly or (zip metadata such as timestamps) not at all."""
    original = load_dataset("darcy", TINY, data_dir=tmp_path)
    path = _cache_file(tmp_path)
    intact = path.read_bytes()
    positions = np.unique(np.linspace(0, len(intact) - 1, 150).astype(int))
    for position in positions:
        damaged = bytearray(intact)
        damaged[position] ^= 0x5A
        path.write_bytes(bytes(damaged))
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            loaded = load_dataset("darcy", TINY, data_dir=tmp_path)
        _assert_same_data(original, loaded)


def test_no_temporary_files_are_left_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_dataset("darcy", TINY, data_dir=tmp_path)
    load_dataset("darcy", {**TINY, "seed": 5}, data_dir=tmp_path)
    assert sorted(path.suffix for path in tmp_path.iterdir()) == [".lock", ".lock", ".npz", ".npz"]

    def failing_save(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(_cache.np, "savez", failing_save)
    with pytest.raises(OSError, match="disk full"):
        load_dataset("darcy", {**TINY, "seed": 6}, data_dir=tmp_path)
    assert not list(tmp_path.glob("*.tmp")) and len(list(tmp_path.glob("*.npz"))) == 2


def test_concurrent_loads_generate_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_generator = darcy.generate_darcy

    def slow_generator(params: darcy.DarcyParams) -> dict[str, np.ndarray]:
        calls.append(params)
        time.sleep(0.3)
        return real_generator(params)

    monkeypatch.setattr(darcy, "generate_darcy", slow_generator)
    results: list[OperatorData] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_dataset("darcy", TINY, data_dir=tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 3


def test_data_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPLAB_DATA_DIR", str(tmp_path / "explicit"))
    assert default_data_dir() == tmp_path / "explicit"
    load_dataset("darcy", TINY)
    assert len(list((tmp_path / "explicit").glob("darcy-*.npz"))) == 1

    monkeypatch.delenv("SWEEPLAB_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "sweeplab" / "data"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "sweeplab" / "data"


def test_public_api() -> None:
    assert set(sweeplab.data.__all__) == {
        "DATASETS",
        "CachedDataset",
        "DataGenerationError",
        "DatasetEntry",
        "OperatorData",
        "TimeWindow",
        "cached_datasets",
        "ensure_dataset",
        "load_dataset",
        "dataset_identity",
        "default_data_dir",
    }


def test_importing_the_package_imports_neither_torch_nor_scipy() -> None:
    script = (
        "import sys\n"
        "import sweeplab.data\n"
        "sweeplab.data.dataset_identity('darcy', {})\n"  # loads the params model (darcy.py) too
        "print(sorted(name for name in ('torch', 'scipy') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
