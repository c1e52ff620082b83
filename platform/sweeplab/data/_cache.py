"""Content-addressed cache of generated data sets: ``<data_dir>/<name>-<identity>.npz``.

The identity hashes the data set's name, its full validated parameters (defaults filled in, so ``{}`` and the
spelled-out defaults share one file) and the entry's version. Parameters that cannot change the data (such as
``workers``) are marked in the params model with ``json_schema_extra={"affects_output": False}`` and left out.

Files are written atomically (temporary file in the same directory, fsync, rename) and carry a sha256 of their
arrays; a file that cannot be read, lacks an array, fails the checksum or has the wrong shapes is reported
with a warning and regenerated. Concurrent callers asking for the same data set wait for one another (an
advisory lock file) instead of all generating it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.data._registry import DATASETS, DatasetEntry
from sweeplab.data._types import OperatorData
from sweeplab_modules.registry import import_target

__all__ = ["dataset_identity", "default_data_dir", "load_dataset"]

SPLITS = ("train", "val", "test")
ARRAY_KEYS = tuple(f"{side}_{split}" for split in SPLITS for side in ("x", "y"))
_CHECKSUM_KEY = "sha256"


def _entry(name: str) -> DatasetEntry:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def _validated_params(entry: DatasetEntry, params: Mapping[str, Any] | None) -> Any:
    return entry.params_model().model_validate(dict(params or {}))


def _output_relevant_params(validated: Any) -> dict[str, Any]:
    fields = type(validated).model_fields
    neutral = {
        name
        for name, field in fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("affects_output") is False
    }
    return validated.model_dump(mode="json", exclude=neutral)


def _identity_of(entry: DatasetEntry, validated: Any) -> str:
    canonical = json.dumps(
        {"name": entry.name, "params": _output_relevant_params(validated), "version": entry.version},
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


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in ARRAY_KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _shape_problem(entry: DatasetEntry, validated: Any, arrays: Mapping[str, np.ndarray]) -> str | None:
    """Why ``arrays`` cannot be this data set (wrong dtype, rank, channels or sample counts), or None."""
    for split in SPLITS:
        expected_samples = getattr(validated, f"n_{split}", None)
        for side, channels in zip(("x", "y"), entry.channels(validated), strict=True):
            array = arrays[f"{side}_{split}"]
            if array.dtype != np.float32:
                return f"{side}_{split} has dtype {array.dtype}, expected float32"
            if array.ndim != 2 + entry.spatial_dims or array.shape[1] != channels:
                return f"{side}_{split} has shape {array.shape}, expected (samples, {channels}, *grid)"
            if expected_samples is not None and array.shape[0] != expected_samples:
                return f"{side}_{split} has {array.shape[0]} samples, expected {expected_samples}"
        if arrays[f"x_{split}"].shape[0] != arrays[f"y_{split}"].shape[0]:
            return f"x_{split} and y_{split} hold different numbers of samples"
    return None


def _read(path: Path, entry: DatasetEntry, validated: Any) -> dict[str, np.ndarray]:
    """The arrays in ``path``; raises if the file is damaged or does not hold this data set."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in ARRAY_KEYS}
        stored_checksum = str(archive[_CHECKSUM_KEY])
    if _checksum(arrays) != stored_checksum:
        raise ValueError("checksum mismatch")
    problem = _shape_problem(entry, validated, arrays)
    if problem is not None:
        raise ValueError(problem)
    return arrays


def _write_atomically(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    # Uncompressed: every run reads the file, and for Darcy (300 samples at 85^2, 17 MB) compression cut the
    # size only 2.3x (a compresses ~80x, u ~1.15x) while reading took 3.6x and writing 15x longer (measured).
    temporary_path: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as temporary:
            temporary_path = Path(temporary.name)
            np.savez(temporary, **arrays, **{_CHECKSUM_KEY: np.array(_checksum(arrays))})
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


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock so that parallel trials generate a data set once, not once each (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; concurrent writers still leave a valid file, just do more work
        yield
        return
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


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


def _generate(entry: DatasetEntry, validated: Any) -> dict[str, np.ndarray]:
    generated = import_target(entry.generate)(validated)
    arrays = {key: np.asarray(generated[key]) for key in ARRAY_KEYS}
    problem = _shape_problem(entry, validated, arrays)
    if problem is not None:
        raise RuntimeError(f"generator {entry.generate} returned a malformed data set: {problem}")
    return arrays


def load_dataset(
    name: str, params: Mapping[str, Any] | None = None, data_dir: str | Path | None = None
) -> OperatorData:
    """Data set ``name`` with ``params``: read from the cache in ``data_dir`` (default:
    ``default_data_dir()``) if an intact copy is there, otherwise generated and stored.
    """
    entry = _entry(name)
    validated = _validated_params(entry, params)
    identity = _identity_of(entry, validated)
    directory = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{identity}.npz"

    # Readers need no lock (files appear by atomic rename), so a read-only cache works; the lock only keeps
    # concurrent callers from generating the same data set several times.
    arrays = _intact_arrays(path, entry, validated, report_damage=True)
    if arrays is None:
        with _exclusive(directory / f".{name}-{identity}.lock"):
            arrays = _intact_arrays(path, entry, validated, report_damage=False)  # written while we waited?
            if arrays is None:
                arrays = _generate(entry, validated)
                _write_atomically(path, arrays)
    return OperatorData(**arrays, identity=identity)
