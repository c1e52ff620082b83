"""Content-addressed cache of generated data sets: ``<data_dir>/<name>-<identity>.npz``.

The identity hashes the data set's name, its full validated parameters (defaults filled in, so ``{}`` and the
spelled-out defaults share one file) and the entry's version. Parameters that cannot change the data (such as
``workers``) are marked in the params model with ``json_schema_extra={"affects_output": False}`` and left out;
parameters added later are marked ``{"identity_omits_default": True}`` and left out while at their default, so
files cached before they existed keep their key.

Besides the arrays, a file holds a JSON record of what it is (name, identity, parameters, version) for
``sweeplab data ls``; it is not part of the checksum and loading never needs it. Nothing in a file depends on
when it was written: the same data set is the same bytes.

Files are written atomically (temporary file in the same directory, fsync, rename) and carry a sha256 of their
arrays; a file that cannot be read, lacks an array, fails the checksum or has the wrong shapes is reported
with a warning and regenerated. Concurrent callers asking for the same data set wait for one another (an
advisory lock file) instead of all generating it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.data._lock import exclusive
from sweeplab.data._registry import DATASETS, DatasetEntry
from sweeplab.data._splits import extra_test_resolutions, keys_at_resolution
from sweeplab.data._types import OperatorData
from sweeplab_modules.registry import import_target

__all__ = ["CachedDataset", "cached_datasets", "dataset_identity", "default_data_dir", "ensure_dataset", "load_dataset"]

SPLITS = ("train", "val", "test")
ARRAY_KEYS = tuple(f"{side}_{split}" for split in SPLITS for side in ("x", "y"))
_CHECKSUM_KEY = "sha256"
_RECORD_KEY = "record"


@dataclass(frozen=True)
class CachedDataset:
    """A data set file in the cache, described by its record (None for the parts of a file without one)."""

    path: Path
    name: str
    identity: str
    params: dict[str, Any] | None
    created: datetime
    size_bytes: int
    generated: bool = False
    """True when ``ensure_dataset`` had to generate it (false when an intact copy was there)."""


def _entry(name: str) -> DatasetEntry:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def _validated_params(entry: DatasetEntry, params: Mapping[str, Any] | None) -> Any:
    return entry.params_model().model_validate(dict(params or {}))


def _leaves_identity_alone(validated: Any, name: str, field: Any) -> bool:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if extra.get("affects_output") is False:
        return True
    return bool(extra.get("identity_omits_default")) and getattr(validated, name) == field.get_default(
        call_default_factory=True
    )


def output_relevant_params(validated: Any) -> dict[str, Any]:
    """The validated parameters that name the data (the cache key's), as JSON values."""
    fields = type(validated).model_fields
    neutral = {name for name, field in fields.items() if _leaves_identity_alone(validated, name, field)}
    return validated.model_dump(mode="json", exclude=neutral)


def _identity_of(entry: DatasetEntry, validated: Any) -> str:
    if entry.reads_files:
        from sweeplab.data._files import files_identity

        return files_identity(validated, output_relevant_params(validated))
    canonical = json.dumps(
        {"name": entry.name, "params": output_relevant_params(validated), "version": entry.version},
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def dataset_identity(name: str, params: Mapping[str, Any]) -> str:
    """The content key of data set ``name`` with ``params`` (validated, defaults filled in): 16 hex digits."""
    entry = _entry(name)
    return _identity_of(entry, _validated_params(entry, params))


def default_data_dir() -> Path:
    """``$SWEEPLAB_DATA_DIR``, else ``$XDG_CACHE_HOME/sweeplab/data``, else ``~/.cache/sweeplab/data``."""
    explicit = os.environ.get("SWEEPLAB_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says relative paths are invalid and must be ignored.
    base = Path(xdg_cache) if xdg_cache and os.path.isabs(xdg_cache) else Path.home() / ".cache"
    return base / "sweeplab" / "data"


def _extra_test_resolutions(validated: Any) -> list[int]:
    return extra_test_resolutions(getattr(validated, "resolution", 0), getattr(validated, "test_resolutions", []))


def _array_keys(validated: Any) -> tuple[str, ...]:
    """The arrays a file of this data set holds: the three splits, and the test split at each extra resolution."""
    return ARRAY_KEYS + tuple(key for size in _extra_test_resolutions(validated) for key in keys_at_resolution(size))


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in arrays:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _shape_problem(entry: DatasetEntry, validated: Any, arrays: Mapping[str, np.ndarray]) -> str | None:
    """Why ``arrays`` cannot be this data set (wrong dtype, rank, channels, grid or sample counts), or None."""
    # Operator data hold inputs and outputs on the data set's grid; other data (labelled images) may not.
    expected_grid = getattr(validated, "resolution", None) if entry.task == "operator" else None
    keyed = [(split, split, expected_grid) for split in SPLITS]
    keyed += [(f"test_{size}", "test", size) for size in _extra_test_resolutions(validated)]
    for suffix, split, grid in keyed:
        expected_samples = getattr(validated, f"n_{split}", None)
        for side, channels in zip(("x", "y"), entry.channels(validated), strict=True):
            array = arrays[f"{side}_{suffix}"]
            if array.dtype != np.float32:
                return f"{side}_{suffix} has dtype {array.dtype}, expected float32"
            if array.ndim != 2 + entry.spatial_dims or array.shape[1] != channels:
                return f"{side}_{suffix} has shape {array.shape}, expected (samples, {channels}, *grid)"
            if grid is not None and array.shape[2:] != (grid,) * entry.spatial_dims:
                return f"{side}_{suffix} has grid {array.shape[2:]}, expected {grid} points per dimension"
            if expected_samples is not None and array.shape[0] != expected_samples:
                return f"{side}_{suffix} has {array.shape[0]} samples, expected {expected_samples}"
        if arrays[f"x_{suffix}"].shape[0] != arrays[f"y_{suffix}"].shape[0]:
            return f"x_{suffix} and y_{suffix} hold different numbers of samples"
    return None


def _read(path: Path, entry: DatasetEntry, validated: Any) -> dict[str, np.ndarray]:
    """The arrays in ``path``; raises if the file is damaged or does not hold this data set."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in _array_keys(validated)}
        stored_checksum = str(archive[_CHECKSUM_KEY])
    if _checksum(arrays) != stored_checksum:
        raise ValueError("checksum mismatch")
    problem = _shape_problem(entry, validated, arrays)
    if problem is not None:
        raise ValueError(problem)
    return arrays


def _write_atomically(path: Path, arrays: Mapping[str, np.ndarray], record: Mapping[str, Any]) -> None:
    # Uncompressed: every run reads the file, and for Darcy (300 samples at 85^2, 17 MB) compression cut the
    # size only 2.3x (a compresses ~80x, u ~1.15x) while reading took 3.6x and writing 15x longer (measured).
    temporary_path: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as temporary:
            temporary_path = Path(temporary.name)
            extra = {_CHECKSUM_KEY: np.array(_checksum(arrays)), _RECORD_KEY: np.array(json.dumps(record))}
            np.savez(temporary, **arrays, **extra)
            temporary.flush()
            os.fsync(temporary.fileno())
        os.replace(temporary_path, path)
    except BaseException:
        if temporary_path is not None:
            temporary_path.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows), where it is skipped.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _intact_arrays(
    path: Path, entry: DatasetEntry, validated: Any, report_damage: bool
) -> dict[str, np.ndarray] | None:
    """The cached arrays; None if there is no file or it is damaged (then warns if ``report_damage``)."""
    if not path.exists():
        return None
    try:
        return _read(path, entry, validated)
    # Any failure here means the file is unusable: a damaged zip or npy header can raise almost anything
    # (BadZipFile, ValueError, EOFError, NotImplementedError for a garbled compression byte).
    except Exception as error:  # noqa: BLE001
        if report_damage:
            warnings.warn(
                f"cached data set {path} is damaged ({type(error).__name__}: {error}); regenerating it",
                RuntimeWarning,
                stacklevel=3,
            )
        return None


class DataGenerationError(RuntimeError):
    """A data set's generator failed (a solver that did not converge on these parameters, say): the message
    names the data set and the parameters it was given."""


def _generate(entry: DatasetEntry, validated: Any) -> dict[str, np.ndarray]:
    try:
        generated = import_target(entry.generate)(validated)
    except Exception as error:
        fields = type(validated).model_fields
        given = {k: v for k, v in validated.model_dump().items() if k not in fields or v != fields[k].default}
        settings = ", ".join(f"{k}={v}" for k, v in given.items()) or "its default parameters"
        raise DataGenerationError(
            f"data set {entry.name!r} could not be generated with {settings}: {type(error).__name__}: {error}"
        ) from error
    arrays = {key: np.asarray(generated[key]) for key in _array_keys(validated)}
    problem = _shape_problem(entry, validated, arrays)
    if problem is not None:
        raise RuntimeError(f"generator {entry.generate} returned a malformed data set: {problem}")
    return arrays


def _locate(
    name: str, params: Mapping[str, Any] | None, data_dir: str | Path | None
) -> tuple[DatasetEntry, Any, str, Path]:
    entry = _entry(name)
    validated = _validated_params(entry, params)
    identity = _identity_of(entry, validated)
    directory = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return entry, validated, identity, directory / f"{name}-{identity}.npz"


def _cached_arrays(
    entry: DatasetEntry, validated: Any, identity: str, path: Path
) -> tuple[dict[str, np.ndarray], bool]:
    """The data set's arrays from ``path``, generated and stored first unless an intact copy is there; and
    whether they were generated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Readers need no lock (files appear by atomic rename), so a read-only cache works; the lock only keeps
    # concurrent callers from generating the same data set several times.
    arrays = _intact_arrays(path, entry, validated, report_damage=True)
    if arrays is not None:
        return arrays, False
    with exclusive(path.parent / f".{entry.name}-{identity}.lock"):
        arrays = _intact_arrays(path, entry, validated, report_damage=False)  # written while we waited?
        if arrays is not None:
            return arrays, False
        arrays = _generate(entry, validated)
        record = {
            "name": entry.name,
            "identity": identity,
            "params": validated.model_dump(mode="json"),
            "version": entry.version,
        }
        _write_atomically(path, arrays, record)
    return arrays, True


def load_dataset(
    name: str, params: Mapping[str, Any] | None = None, data_dir: str | Path | None = None
) -> OperatorData:
    """Data set ``name`` with ``params``: read from the cache in ``data_dir`` (default:
    ``default_data_dir()``) if an intact copy is there, otherwise generated and stored.
    """
    entry = _entry(name)
    if entry.reads_files:
        from sweeplab.data._files import load_files

        validated = _validated_params(entry, params)
        directory = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        return load_files(validated, output_relevant_params(validated), directory)
    entry, validated, identity, path = _locate(name, params, data_dir)
    arrays, _ = _cached_arrays(entry, validated, identity, path)
    test_at_resolution = {}
    for size in getattr(validated, "test_resolutions", []):
        # The training resolution's test split serves that size; the others have arrays of their own.
        x_key, y_key = ("x_test", "y_test") if size == validated.resolution else keys_at_resolution(size)
        test_at_resolution[size] = (arrays[x_key], arrays[y_key])
    return OperatorData(
        **{key: arrays[key] for key in ARRAY_KEYS},
        identity=identity,
        test_at_resolution=test_at_resolution,
        time_window=getattr(validated, "time_window", None),
        physics=getattr(validated, "physics", None),
    )


def ensure_dataset(
    name: str, params: Mapping[str, Any] | None = None, data_dir: str | Path | None = None
) -> CachedDataset:
    """Make sure the cache holds an intact copy of data set ``name`` with ``params`` (generating it if not)."""
    entry, validated, identity, path = _locate(name, params, data_dir)
    _, generated = _cached_arrays(entry, validated, identity, path)
    return dataclasses.replace(_describe(path), generated=generated)


def _describe(path: Path) -> CachedDataset:
    """What the file at ``path`` (named ``<name>-<identity>.npz``) holds, read from its record alone."""
    name, _, identity = path.stem.rpartition("-")
    stat = path.stat()
    params = None
    try:
        with np.load(path, allow_pickle=False) as archive:
            params = json.loads(str(archive[_RECORD_KEY]))["params"]
    except Exception:  # noqa: BLE001 - a file without a record (older, or damaged) is still listed
        pass
    # Written by an atomic rename of a file closed right after writing: its modification time is its creation's.
    return CachedDataset(
        path, name, identity, params, datetime.fromtimestamp(stat.st_mtime, timezone.utc), stat.st_size
    )


def _describe_converted(folder: Path) -> CachedDataset:
    """A data set converted from the user's files (``files-<identity>/``, see ``_files``), from its record."""
    record = json.loads((folder / "record.json").read_text())
    stat = (folder / "record.json").stat()
    size = sum(path.stat().st_size for path in folder.iterdir())
    created = datetime.fromtimestamp(stat.st_mtime, timezone.utc)
    return CachedDataset(folder, record["name"], record["identity"], record["params"], created, size)


def cached_datasets(data_dir: str | Path | None = None) -> list[CachedDataset]:
    """Every data set file in ``data_dir`` (default ``default_data_dir()``), by name, then newest first."""
    directory = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    found = [_describe(path) for path in directory.glob("*-*.npz")] if directory.is_dir() else []
    found += [_describe_converted(folder) for folder in directory.glob("files-*") if (folder / "record.json").is_file()]
    return sorted(found, key=lambda dataset: (dataset.name, -dataset.created.timestamp()))
