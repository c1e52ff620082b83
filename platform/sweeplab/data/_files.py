"""Data sets from the user's files: MATLAB (v5 and v7.3), HDF5 (PDEBench), ``.npz`` and ``.pt``.

``data: {name: files, params: {path: ..., input: KEY, output: KEY, spatial_dims: 2, ...}}``. Two layouts:

- ``fno`` (the FNO paper's ``.mat`` files, and most ``.npz``): a field is ``(samples, *grid)`` or
  ``(samples, *grid, channels)``, e.g. Darcy's ``coeff``/``sol``, Burgers' ``a``/``u``, Navier-Stokes' ``u``
  with its time steps last. MATLAB v7.3 files are HDF5 and store arrays transposed (column-major): read as such.
- ``pdebench`` (PDEBench's HDF5 files): ``(samples, time, *grid)`` or ``(samples, time, *grid, channels)``
  (``tensor``, or ``density``/``Vx``/... of the CFD sets; Darcy's ``nu`` has no time axis), or one group per
  sample holding ``KEY`` as ``(time, *grid, channels)`` (``0000/data`` of the diffusion-reaction and
  shallow-water sets).

``input_steps``/``output_steps`` pick time steps (``pdebench``) or trailing channels (``fno``) as channels,
e.g. the FNO Navier-Stokes recipe ``u[..., :10] -> u[..., 10:20]``. ``resolution`` subsamples the grid by a
stride as the FNO scripts do: ``(n - 1) / (resolution - 1)`` when that is whole (grids with both end points,
Darcy 421 -> 85), else ``n / resolution`` (periodic grids, Burgers 8192 -> 1024).

The arrays are converted once, block by block, into ``<data_dir>/files-<identity>/`` as float32 ``.npy`` files
that every run memory-maps: workers share the pages, and neither conversion nor training holds a whole large
file in memory. The identity is the sha256 of the files' contents plus the loading parameters (not the paths:
a moved file is the same data). Nothing here imports torch unless a ``.pt`` file is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from sweeplab.data._splits import split_in_order
from sweeplab.data._types import OperatorData

__all__ = ["FilesParams", "SplitPaths", "file_problems", "files_identity", "load_files"]

SPLITS = ("train", "val", "test")
_SIDES = (("x", "input"), ("y", "output"))
VERSION = "1"
_BLOCK_BYTES = 64 * 2**20  # samples read and converted at a time
_HASH_CHUNK = 8 * 2**20

Problem = tuple[tuple[str, ...], str]


class SplitPaths(BaseModel):
    """One file per split; a split without its own file is taken from the training file, after its samples."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    train: str
    val: str | None = None
    test: str | None = None


class FilesParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | SplitPaths = Field(
        description="a file (split in order: train, val, test), or {train, val, test} files; relative to the study",
        json_schema_extra={"affects_output": False},  # the content hash names the data, not where it lies
    )
    input: str = Field(description="the input field: a MATLAB variable, HDF5 dataset, npz key or dict key of a .pt")
    output: str = Field(description="the output field")
    spatial_dims: Literal[1, 2, 3] = Field(description="grid dimensions of a sample")
    layout: Literal["fno", "pdebench"] = Field("fno", description="how a field's axes are ordered (module doc)")
    input_steps: list[int] | None = Field(None, description="time steps (pdebench) or channels (fno) as input")
    output_steps: list[int] | None = Field(None, description="time steps (pdebench) or channels (fno) as output")
    resolution: int | None = Field(None, ge=2, description="grid points per dimension after subsampling by stride")
    n_train: int | None = Field(None, ge=1, description="training samples (default: all of a file of its own)")
    n_val: int | None = Field(None, ge=1)
    n_test: int | None = Field(None, ge=1)
    shuffle: bool = Field(False, description="draw the splits of a shared file at random (by seed), not in order")
    seed: int = 0

    @field_validator("path", mode="after")
    @classmethod
    def _absolute(cls, path: str | SplitPaths, info: ValidationInfo) -> str | SplitPaths:
        """Relative paths are the study file's folder's (the checker passes it as ``base``)."""
        base = Path((info.context or {}).get("base", "."))

        def resolved(value: str) -> str:
            return str((base / Path(value).expanduser()).resolve())

        if isinstance(path, str):
            return resolved(path)
        return SplitPaths(**{split: resolved(p) if p else None for split, p in path.model_dump().items()})

    def file_of(self, split: str) -> str:
        if isinstance(self.path, str):
            return self.path
        return getattr(self.path, split) or self.path.train

    @cached_property
    def plan(self) -> _Plan:
        """What the files hold and how they are read (opens them, reads no data); raises _FileProblem."""
        return _Plan.of(self)

    @property
    def in_channels(self) -> int:
        return self.plan.channels["input"]

    @property
    def out_channels(self) -> int:
        return self.plan.channels["output"]


class _FileProblem(Exception):
    def __init__(self, field: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# -- reading one field of one file, lazily -------------------------------------------------------------------------
class _Field:
    """One array of a file as ``(samples, *per-sample)``, read a block of samples at a time."""

    def __init__(self, shape: tuple[int, ...], read: Any) -> None:
        self.shape = shape
        self._read = read

    def read(self, indices: np.ndarray) -> np.ndarray:
        """The samples at sorted ``indices``, as ``(len(indices), *shape[1:])``."""
        contiguous = len(indices) and indices[-1] - indices[0] == len(indices) - 1
        # A slice where the samples are consecutive: HDF5 reads it in one go, a list point by point.
        return np.asarray(self._read(slice(int(indices[0]), int(indices[-1]) + 1) if contiguous else indices))


def _open_field(path: str, key: str, stack: list[Any]) -> _Field:
    """The field ``key`` of file ``path``; raises KeyError (no such field) or OSError/ValueError (unreadable)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        archive = np.load(path, allow_pickle=False)
        stack.append(archive)
        if key not in archive.files:
            raise KeyError(key)
        array = archive[key]  # a zip member is read whole: it cannot be mapped
        return _Field(array.shape, lambda i: array[i])
    if suffix == ".pt":
        import torch

        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if not isinstance(loaded, dict):
            raise ValueError("a .pt file must hold a dict of tensors")
        if key not in loaded:
            raise KeyError(key)
        tensor = loaded[key]
        return _Field(tuple(tensor.shape), lambda i: tensor[i if isinstance(i, slice) else torch.from_numpy(i)].numpy())
    import h5py

    if h5py.is_hdf5(path):
        handle = h5py.File(path, "r")
        stack.append(handle)
        if key in handle and isinstance(handle[key], h5py.Dataset):
            dataset = handle[key]
            if suffix == ".mat":  # MATLAB v7.3: column-major, the sample axis is the last one in HDF5
                shape = tuple(reversed(dataset.shape))
                return _Field(shape, lambda i: np.asarray(dataset[..., i]).transpose())
            return _Field(dataset.shape, lambda i: dataset[i])
        groups = sorted(name for name, item in handle.items() if isinstance(item, h5py.Group) and key in item)
        if not groups:  # PDEBench's sets with one group per sample ("0000/data")
            raise KeyError(key)
        first = handle[groups[0]][key]
        return _Field((len(groups), *first.shape), lambda i: np.stack([handle[g][key][()] for g in _pick(groups, i)]))
    if suffix == ".mat":
        import scipy.io

        variables = {name: shape for name, shape, _ in scipy.io.whosmat(path)}
        if key not in variables:
            raise KeyError(key)
        # MATLAB v5 files cannot be read in parts: the one variable is loaded (v5 files are below 2 GB).
        array = scipy.io.loadmat(path, variable_names=[key])[key]
        return _Field(array.shape, lambda i: array[i])
    raise ValueError(f"unknown file type {suffix!r} (.mat, .h5, .hdf5, .npz, .pt)")


def _pick(items: list[str], index: slice | np.ndarray) -> list[str]:
    return items[index] if isinstance(index, slice) else [items[i] for i in index]


# -- what a field becomes: channels and grid ------------------------------------------------------------------------
class _Side:
    """How one side (input or output) is read: the field, which steps/channels, the stride, the result's shape."""

    def __init__(self, field: _Field, where: str, params: FilesParams) -> None:
        self.field = field
        d = params.spatial_dims
        per_sample = field.shape[1:]
        steps = params.input_steps if where == "input" else params.output_steps
        if params.layout == "fno":
            # (*grid) or (*grid, channels)
            if len(per_sample) not in (d, d + 1):
                raise _FileProblem(
                    (where,),
                    f"{getattr(params, where)!r} has shape {field.shape}; the fno layout with spatial_dims "
                    f"{d} wants (samples, *grid) or (samples, *grid, channels)",
                )
            self.grid_axes = tuple(range(1, d + 1))
            self.step_axis = d + 1 if len(per_sample) == d + 1 else None
            self.channel_axis = None
        else:
            # (*grid), (time, *grid) or (time, *grid, channels)
            if len(per_sample) not in (d, d + 1, d + 2):
                raise _FileProblem(
                    (where,),
                    f"{getattr(params, where)!r} has shape {field.shape}; the pdebench layout with "
                    f"spatial_dims {d} wants (samples, [time,] *grid[, channels])",
                )
            has_time = len(per_sample) > d
            self.step_axis = 1 if has_time else None
            self.grid_axes = tuple(range(2, d + 2)) if has_time else tuple(range(1, d + 1))
            self.channel_axis = d + 2 if len(per_sample) == d + 2 else None
        grid = [field.shape[axis] for axis in self.grid_axes]
        if len(set(grid)) != 1:
            raise _FileProblem((where,), f"a grid of {grid} points: only square grids are supported")
        self.fine = grid[0]
        n_steps = field.shape[self.step_axis] if self.step_axis is not None else 1
        if steps is not None and self.step_axis is None:
            raise _FileProblem((f"{where}_steps",), f"{field.shape} has no time or channel axis to pick steps from")
        self.steps = list(range(n_steps)) if steps is None else steps
        bad = [s for s in self.steps if not -n_steps <= s < n_steps]
        if bad:
            raise _FileProblem((f"{where}_steps",), f"{bad} out of range: the field has {n_steps} steps")
        extra = field.shape[self.channel_axis] if self.channel_axis is not None else 1
        self.channels = len(self.steps) * extra

    def convert(self, block: np.ndarray, stride: int, size: int) -> np.ndarray:
        """A block of raw samples as float32 ``(samples, channels, *grid)`` at ``size`` points per dimension."""
        index: list[Any] = [slice(None)] * block.ndim
        for axis in self.grid_axes:
            index[axis] = slice(0, stride * (size - 1) + 1, stride)
        if self.step_axis is not None:
            index[self.step_axis] = self.steps
        picked = block[tuple(index)]
        # to (samples, steps, channels, *grid), then steps x channels as the channels
        leading = [axis for axis in (self.step_axis, self.channel_axis) if axis is not None]
        picked = picked.transpose([0, *leading, *self.grid_axes])
        grid = picked.shape[picked.ndim - len(self.grid_axes) :]
        return np.ascontiguousarray(picked.reshape(len(block), self.channels, *grid), dtype=np.float32)


def _stride(fine: int, size: int) -> int | None:
    """The FNO scripts' subsampling: with both end points when it divides, else a periodic grid's."""
    if size == fine:
        return 1
    if (fine - 1) % (size - 1) == 0:
        return (fine - 1) // (size - 1)
    if fine % size == 0:
        return fine // size
    return None


class _Plan:
    """The files of a data set opened (no data read): each split's sides, sample indices, stride and size."""

    def __init__(self, params: FilesParams) -> None:
        self.params = params
        self.splits: dict[str, tuple[str, np.ndarray]] = {}
        self.channels: dict[str, int] = {}
        self.size = 0
        self.stride = 1

    @classmethod
    def of(cls, params: FilesParams) -> _Plan:
        plan = cls(params)
        by_file: dict[str, list[str]] = {}
        for split in SPLITS:
            by_file.setdefault(params.file_of(split), []).append(split)
        for path, splits in by_file.items():
            plan._add_file(path, splits)
        return plan

    def _add_file(self, path: str, splits: list[str]) -> None:
        params = self.params
        field_of_path = ("path",) if isinstance(params.path, str) else ("path", splits[0])
        if not Path(path).is_file():
            raise _FileProblem(field_of_path, f"no such file: {path}")
        sides = {}
        for where in ("input", "output"):
            key = getattr(params, where)
            try:
                with _opened(path, key) as field:
                    sides[where] = _Side(field, where, params)
            except KeyError:
                raise _FileProblem((where,), f"{Path(path).name} has no field {key!r}{_available(path)}") from None
            except (OSError, ValueError) as error:
                raise _FileProblem(field_of_path, f"cannot read {path}: {error}") from None
        n = sides["input"].field.shape[0]
        if sides["output"].field.shape[0] != n:
            raise _FileProblem(
                ("output",), f"{params.output!r} holds {sides['output'].field.shape[0]} samples, {params.input!r} {n}"
            )
        fine = sides["input"].fine
        if sides["output"].fine != fine:
            raise _FileProblem(("output",), f"grid of {sides['output'].fine} points, the input's has {fine}")
        size = params.resolution or fine
        stride = _stride(fine, size)
        if stride is None or size > fine:
            raise _FileProblem(("resolution",), f"{size} is not a subsample by stride of the files' {fine} points")
        if self.size and (size, stride) != (self.size, self.stride):
            raise _FileProblem(field_of_path, f"grid of {fine} points, unlike the other files'")
        self.size, self.stride = size, stride
        for where, side in sides.items():
            if self.channels.setdefault(where, side.channels) != side.channels:
                raise _FileProblem((where,), f"{side.channels} channels in {path}, unlike the other files'")
        counts = {split: getattr(params, f"n_{split}") for split in splits}
        if len(splits) == 1 and counts[splits[0]] is None:
            counts[splits[0]] = n
        missing = [split for split, count in counts.items() if count is None]
        if missing:
            shared = f"{', '.join(splits)} share {Path(path).name} ({n} samples)"
            raise _FileProblem((f"n_{missing[0]}",), f"required: {shared}")
        if sum(counts.values()) > n:
            asked = " + ".join(f"n_{s} {c}" for s, c in counts.items())
            raise _FileProblem((f"n_{splits[0]}",), f"{asked} > the {n} samples of {Path(path).name}")
        order = np.random.default_rng(params.seed).permutation(n) if params.shuffle else np.arange(n)
        for split, indices in split_in_order(order, order, counts).items():
            if split.startswith("x_"):
                self.splits[split[2:]] = (path, np.sort(indices))

    def blocks(self) -> Iterator[tuple[str, int, np.ndarray, np.ndarray]]:
        """Every split's samples converted, a block at a time: (split, first row, inputs, outputs)."""
        params = self.params
        for split, (path, indices) in self.splits.items():
            with _opened(path, params.input) as x_field, _opened(path, params.output) as y_field:
                x_side, y_side = _Side(x_field, "input", params), _Side(y_field, "output", params)
                sample_bytes = 8 * (int(np.prod(x_field.shape[1:])) + int(np.prod(y_field.shape[1:])))
                block = max(1, _BLOCK_BYTES // max(sample_bytes, 1))
                for start in range(0, len(indices), block):
                    chosen = indices[start : start + block]
                    yield (
                        split,
                        start,
                        x_side.convert(x_field.read(chosen), self.stride, self.size),
                        y_side.convert(y_field.read(chosen), self.stride, self.size),
                    )

    def shape(self, split: str, where: str) -> tuple[int, ...]:
        return (len(self.splits[split][1]), self.channels[where], *(self.size,) * self.params.spatial_dims)


class _opened:
    """``with _opened(path, key) as field``: the field, its file closed afterwards."""

    def __init__(self, path: str, key: str) -> None:
        self.path, self.key = path, key
        self._stack: list[Any] = []

    def __enter__(self) -> _Field:
        try:
            return _open_field(self.path, self.key, self._stack)
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *_: Any) -> None:
        for handle in self._stack:
            handle.close()


def _available(path: str) -> str:
    """`` (fields: a, u)``: what the file holds, for the message about a missing one."""
    try:
        suffix = Path(path).suffix.lower()
        import h5py

        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as handle:
                names = [name for name in handle if not name.startswith("#")]
        elif suffix == ".mat":
            import scipy.io

            names = [name for name, _, _ in scipy.io.whosmat(path)]
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
        else:
            return ""
    except Exception:  # noqa: BLE001 - the hint is optional; the missing field is the error
        return ""
    return f" (fields: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''})"


# -- the checker's hook: everything that can be wrong with the files, before anything is written --------------------
def file_problems(params: FilesParams) -> list[Problem]:
    """Missing files or fields, shapes that do not fit the layout, too few samples, non-finite values: each with
    the parameter it is about. Reads every sample that will be used once, a block at a time."""
    try:
        plan = params.plan
        for split, start, x, y in plan.blocks():
            for where, block in (("input", x), ("output", y)):
                if not np.isfinite(block).all():
                    row = start + int(np.argwhere(~np.isfinite(block))[0][0])
                    path, indices = plan.splits[split]
                    return [
                        (
                            (where,),
                            f"{getattr(params, where)!r} of {Path(path).name} is not finite at sample "
                            f"{indices[row]} (a {split} sample)",
                        )
                    ]
    except _FileProblem as problem:
        return [(problem.field, problem.message)]
    except (OSError, ValueError) as error:  # a file damaged past its header
        return [(("path",), f"cannot read the files: {error}")]
    return []


# -- identity and the converted copy ----------------------------------------------------------------------------------
@cache
def _content_hash(path: str, size: int, modified_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_of(path: str) -> str:
    stat = os.stat(path)
    return _content_hash(path, stat.st_size, stat.st_mtime_ns)


def files_identity(params: FilesParams, loading: dict[str, Any]) -> str:
    """16 hex digits: the sha256 of every file's content (by split) and the loading parameters ``loading``."""
    canonical = json.dumps(
        {
            "name": "files",
            "content": {split: _hash_of(params.file_of(split)) for split in SPLITS},
            "params": loading,
            "version": VERSION,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _read_converted(folder: Path, plan: _Plan) -> dict[str, np.ndarray] | None:
    """The converted arrays, memory-mapped (copy-on-write: torch wants writable arrays; nothing is written)."""
    try:
        arrays = {
            f"{side}_{split}": np.load(folder / f"{side}_{split}.npy", mmap_mode="c", allow_pickle=False)
            for split in SPLITS
            for side in ("x", "y")
        }
    except (OSError, ValueError):
        return None
    intact = all(
        arrays[f"{side}_{split}"].shape == plan.shape(split, where) and arrays[f"{side}_{split}"].dtype == np.float32
        for split in SPLITS
        for side, where in _SIDES
    )
    return arrays if intact else None


def _convert(folder: Path, plan: _Plan, record: dict[str, Any]) -> None:
    """Write the converted arrays into ``folder`` atomically (a temporary folder beside it, renamed). Blocks are
    appended with plain writes: a memory map would count every written page in this process's memory."""
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        files = {}
        for split in SPLITS:
            for side, where in _SIDES:
                handle = open(staging / f"{side}_{split}.npy", "wb")  # noqa: SIM115 - closed below
                header = {"descr": np.dtype(np.float32).str, "fortran_order": False, "shape": plan.shape(split, where)}
                np.lib.format.write_array_header_2_0(handle, header)
                files[f"{side}_{split}"] = handle
        try:
            for split, _, x, y in plan.blocks():  # in order of the samples, split by split
                files[f"x_{split}"].write(x.tobytes())
                files[f"y_{split}"].write(y.tobytes())
        finally:
            for handle in files.values():
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
        (staging / "record.json").write_text(json.dumps(record, indent=1))
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_files(params: FilesParams, loading: dict[str, Any], directory: Path) -> OperatorData:
    """The data set read from the user's files: converted once into ``directory``, memory-mapped from there."""
    from sweeplab.data._lock import exclusive

    identity = files_identity(params, loading)
    folder = directory / f"files-{identity}"
    plan = params.plan
    arrays = _read_converted(folder, plan)
    if arrays is None:
        directory.mkdir(parents=True, exist_ok=True)
        with exclusive(directory / f".files-{identity}.lock"):
            arrays = _read_converted(folder, plan)
            if arrays is None:
                shutil.rmtree(folder, ignore_errors=True)  # a damaged copy
                record = {"name": "files", "identity": identity, "params": params.model_dump(mode="json")}
                _convert(folder, plan, record)
                arrays = _read_converted(folder, plan)
                assert arrays is not None
    return OperatorData(**arrays, identity=identity)
