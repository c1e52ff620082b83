"""Arrays in files for ``sweeplab predict``: ``.npy`` (one array), ``.npz`` and ``.h5``/``.hdf5`` (the array
named ``x`` on input, or the only one; written as ``y``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["ARRAY_SUFFIXES", "ArrayFileError", "array_format", "read_array", "write_array"]

ARRAY_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")
INPUT_NAME, OUTPUT_NAME = "x", "y"


class ArrayFileError(ValueError):
    """A file that holds no usable array; the message names the file."""


def array_format(path: Path) -> str:
    """The format ``path`` names by its suffix; ArrayFileError for any other."""
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        raise ArrayFileError(
            f"{path}: unknown format {path.suffix or '(no suffix)'!r}; use {', '.join(ARRAY_SUFFIXES)}"
        )
    return suffix


def read_array(path: Path) -> np.ndarray:
    """The input array in ``path``: the ``.npy``'s array, or the one named ``x`` (else the only one)."""
    suffix = array_format(path)
    if not path.is_file():
        raise ArrayFileError(f"{path}: no such file")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                return arrays[_input_name(path, list(arrays.files))]
        import h5py

        with h5py.File(path, "r") as file:
            names = [name for name in file if isinstance(file[name], h5py.Dataset)]
            return np.asarray(file[_input_name(path, names)])
    except (OSError, ValueError) as error:
        if isinstance(error, ArrayFileError):
            raise
        raise ArrayFileError(f"{path}: cannot read it as {suffix}: {error}") from None


def _input_name(path: Path, names: list[str]) -> str:
    if INPUT_NAME in names:
        return INPUT_NAME
    if len(names) == 1:
        return names[0]
    found = ", ".join(names) or "none"
    raise ArrayFileError(f"{path}: name the input array {INPUT_NAME!r} (arrays found: {found})")


def write_array(path: Path, array: np.ndarray) -> None:
    """``array`` to ``path`` in the format its suffix names (as ``y`` in ``.npz`` and ``.h5``)."""
    suffix = array_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(path, array)
    elif suffix == ".npz":
        np.savez(path, **{OUTPUT_NAME: array})
    else:
        import h5py

        with h5py.File(path, "w") as file:
            file.create_dataset(OUTPUT_NAME, data=array)
