"""``sweeplab data generate`` and ``sweeplab data ls``: fill and list the data cache from the command line."""

from __future__ import annotations

import difflib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweeplab.commands._exit import EXIT_INVALID, EXIT_OK
from sweeplab.commands._models import print_registry
from sweeplab.data._cache import (
    CachedDataset,
    cached_datasets,
    default_data_dir,
    ensure_dataset,
    output_relevant_params,
)
from sweeplab.data._registry import DATASETS
from sweeplab.datagen.solvers import direction_model_loader
from sweeplab.serving import load_model

__all__ = ["generate_command", "list_command"]


class _InvalidParams(ValueError):
    pass


def _parsed_params(name: str, assignments: Sequence[str]) -> dict[str, Any]:
    """``k=v`` pairs as a dict, each value read as YAML (``1e-3`` a float, ``[141, 211]`` a list), then checked
    against the data set's parameter model."""
    from pydantic import ValidationError

    from sweeplab.spec._yaml import YamlError, load_with_lines

    model = DATASETS[name].params_model()
    params: dict[str, Any] = {}
    problems = []
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        key = key.strip()
        if not equals or not key:
            problems.append(f"--param {assignment!r}: expected NAME=VALUE")
            continue
        if key not in model.model_fields:
            close = difflib.get_close_matches(key, list(model.model_fields), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(model.model_fields)}"
            problems.append(f"--param {key}: unknown parameter of {name} ({hint})")
            continue
        try:
            params[key] = load_with_lines(text)[0] if text.strip() else None
        except YamlError as error:
            problems.append(f"--param {key}: {error.message}")
    try:
        model.model_validate(params)
    except ValidationError as error:
        for detail in error.errors():
            where = ".".join(str(part) for part in detail["loc"])
            message = detail["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
            problems.append(f"--param {where}: {message}" if where else f"{name}: {message}")
    if problems:
        raise _InvalidParams("\n".join(problems))
    return params


def _size(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def generate_command(name: str, assignments: Sequence[str], data_dir: Path | None) -> int:
    if name not in DATASETS:
        close = difflib.get_close_matches(name, list(DATASETS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(DATASETS))}"
        print(f"unknown data set {name!r} ({hint})", file=sys.stderr)
        return EXIT_INVALID
    if DATASETS[name].reads_files:
        print(f"{name}: your files are read by the study that names them, not generated", file=sys.stderr)
        return EXIT_INVALID
    try:
        params = _parsed_params(name, assignments)
    except _InvalidParams as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    # The generators report progress as a bar on a terminal, otherwise as log lines: let those through.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("sweeplab.datagen").setLevel(logging.INFO)
    started = time.perf_counter()
    # A data set solved by a trained model (solver dcdm) names it by URI in $MLFLOW_TRACKING_URI's store.
    with direction_model_loader(load_model):
        dataset = ensure_dataset(name, params, data_dir)
    what = f"generated in {time.perf_counter() - started:.1f} s" if dataset.generated else "already cached"
    print(f"{dataset.name} {dataset.identity}: {what}")
    print(f"{dataset.path} ({_size(dataset.size_bytes)})")
    return EXIT_OK


def _key_params(dataset: CachedDataset) -> str:
    """The parameters that set this data set apart: those that change the data and differ from the defaults."""
    if dataset.params is None:
        return "? (no record: written by an older sweeplab)"
    entry = DATASETS.get(dataset.name)
    if entry is None:
        return ", ".join(f"{k}={v}" for k, v in dataset.params.items())
    model = entry.params_model()
    try:
        relevant = output_relevant_params(model.model_validate(dataset.params))
    except ValueError:  # parameters of another sweeplab version
        relevant = dataset.params
    if entry.reads_files:  # the files' content names the data; where they are is what a reader looks for
        relevant = dataset.params
    defaults = {
        name: field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
        if not field.is_required()
    }
    changed = {k: v for k, v in relevant.items() if defaults.get(k) != v}
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "(defaults)"


def list_command(data_dir: Path | None, available: bool = False) -> int:
    """The cached data sets; with ``available``, the data sets a study can name, with the package of each."""
    from rich.console import Console
    from rich.table import Table

    if available:
        return _list_available()
    directory = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    datasets = cached_datasets(directory)
    console = Console()
    if not console.is_terminal:  # piped or captured: no terminal width to fit, so keep rows whole
        console = Console(width=200)
    if not datasets:
        console.print(f"no cached data sets in {directory}")
        return EXIT_OK
    table = Table(title=f"data sets in {directory}", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("hash", no_wrap=True, min_width=16)
    table.add_column("parameters", min_width=24)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for dataset in datasets:
        created = dataset.created.astimezone().strftime("%Y-%m-%d %H:%M")
        table.add_row(dataset.name, dataset.identity, _key_params(dataset), _size(dataset.size_bytes), created)
    console.print(table)
    return EXIT_OK


def _list_available() -> int:
    """Every registered data set (built-in or a plugin's): name, source package, task, dimensions, description;
    plugin problems (a name registered twice) on stderr, exit 2."""
    rows = [
        (
            name,
            DATASETS.source(name),
            entry.task,
            "any" if entry.reads_files else str(entry.spatial_dims),
            entry.description,
        )
        for name, entry in sorted(DATASETS.items())
    ]
    return print_registry(["data set", "package", "task", "dims", "description"], rows, DATASETS.problems)
