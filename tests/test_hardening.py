"""Hostile input (issue 16): what cannot run is refused by ``validate`` with file, line and field, never a
traceback; flags are checked as the study's keys; secrets never reach anything recorded or printed; a trial that
fails for any reason says why."""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
import tomllib
import yaml
from conftest import REPO, TINY_STUDY, write_study
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sweeplab.record import REASON_ATTR
from sweeplab.spec import Study, StudyError, load_study, parse_study
from sweeplab.spec._yaml import MAX_EXPANDED_VALUES


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeplab", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def _alias_bomb(levels: int, fan_out: int) -> str:
    """``levels`` anchors, each a list of ``fan_out`` aliases of the one before: fan_out ** levels values."""
    lines = [f"a0: &a0 [{', '.join(['1'] * fan_out)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan_out)}]" for i in range(1, levels)]
    return TINY_STUDY + "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_within_a_second() -> None:
    text = _alias_bomb(levels=7, fan_out=10)  # 10 ** 7 values from 1.2 KB
    assert len(text.encode()) < 2000
    started = time.perf_counter()
    with pytest.raises(StudyError) as caught:
        parse_study(text, "s.yaml")
    assert time.perf_counter() - started < 1.0
    # a4 is the first anchor past the limit (11,111 values in a3, ten of them in a4): its line is named.
    assert str(caught.value) == (
        f"s.yaml:27: aliases expand this document past {MAX_EXPANDED_VALUES:,} values: write the values out, or "
        "alias less deeply"
    )


def test_shared_aliases_are_converted_once_and_keep_their_lines() -> None:
    # 11,110 values through aliases, under the limit: each anchor converted once, in well under a second.
    started = time.perf_counter()
    with pytest.raises(StudyError) as caught:
        parse_study(_alias_bomb(levels=4, fan_out=10), "s.yaml")
    assert time.perf_counter() - started < 1.0
    assert [(issue.location, issue.line) for issue in caught.value.issues] == [
        ((f"a{i}",), 23 + i)
        for i in range(4)  # unknown keys, each at its own line
    ]
    # A mapping with a merge key, named twice: merged once, its written key still beating the merged one.
    twin = "  - {name: fno2d, label: twin, params: {<<: *fixed, width: 4, modes: 2}}\n"
    text = TINY_STUDY.replace(
        "    params: {n_layers: 2,", "    params: &fixed {<<: {n_layers: 3}, n_layers: 2,"
    ).replace("search:\n  lr", twin + "search:\n  lr")
    first, twin = parse_study(text, "s.yaml").models
    assert first.fixed == {"n_layers": 2, "padding": 0, "projection_width": 16}
    assert twin.fixed == first.fixed | {"width": 4, "modes": 2}


def test_a_study_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_bytes(TINY_STUDY.replace("name: tiny", "name: tiny\ndescription: caf\xe9").encode("latin-1"))
    result = _cli("validate", str(study_file), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{study_file}:2: not UTF-8 text: byte 0xe9 at column 17" in result.stderr


@pytest.mark.parametrize(
    "flags, env, message",
    [
        (["--storage", "redis://localhost/0"], {}, "argument --storage: 'redis://localhost/0' is not a supported URL"),
        (["--tracking-uri", "mongodb://h/x"], {}, "argument --tracking-uri: 'mongodb://h/x' is not a supported URL"),
        (["--storage", "postgresql://u@h/db"], {}, "postgresql:// needs the psycopg2 driver"),
        ([], {"SWEEPLAB_STORAGE": "redis://u:hunter2@h/0"}, "argument --storage: 'redis://u:***@h/0' is not"),
    ],
)
def test_url_flags_are_checked_as_the_study_keys_before_anything_is_written(
    tmp_path: Path, flags: list[str], env: dict[str, str], message: str
) -> None:
    study_file = write_study(tmp_path, TINY_STUDY)
    result = _cli("worker" if env else "run", str(study_file), *flags, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # no data, no mlruns/


def test_a_failure_while_sampling_is_recorded_with_its_reason(tmp_path: Path) -> None:
    from sweeplab.run import run_study

    # validate refuses an infinite bound; the engine must still record why such a trial failed.
    study = load_study(write_study(tmp_path, TINY_STUDY))
    (lr,) = study.shared_dimensions
    study = dataclasses.replace(study, shared_dimensions=(dataclasses.replace(lr, high=float("inf")),))
    storage = f"sqlite:///{tmp_path}/optuna.db"
    run_study(study, storage, f"sqlite:///{tmp_path}/mlflow.db", n_trials=1)
    (trial,) = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs[REASON_ATTR] == "OverflowError: Range exceeds valid bounds"


def test_a_secret_in_the_flags_is_never_recorded_or_printed(postgres_cluster, tmp_path: Path) -> None:
    # Trust authentication ignores passwords, so the run works while its URLs carry three of them.
    storage = (
        postgres_cluster.create_database("secret_optuna").replace("postgres@", "postgres:PLANTED-USERINFO@")
        + "?sslpassword=PLANTED-SSLPASSWORD"
    )
    tracking = postgres_cluster.create_database("secret_mlflow") + "?password=PLANTED-QUERY"
    work = tmp_path / "work"
    work.mkdir()
    study_file = write_study(work, TINY_STUDY.replace("  max_epochs: 2", "  max_epochs: 1"))
    result = _cli(
        "run",
        str(study_file),
        "--n-trials",
        "1",
        "--storage",
        storage,
        "--tracking-uri",
        tracking,
        cwd=work,
        env={"SWEEPLAB_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 0, result.stderr
    dumps = [
        postgres_cluster.run("pg_dump", "-h", "127.0.0.1", "-p", str(postgres_cluster.port), "-U", "postgres", name)
        for name in ("secret_optuna", "secret_mlflow")
    ]
    assert "sweeplab.command" in dumps[1] and "postgres:***@" in dumps[1]  # the tags are there, redacted
    written = [(str(path), path.read_bytes() if path.is_file() else b"") for path in tmp_path.rglob("*")]
    assert len(written) > 3
    for secret in ("PLANTED-USERINFO", "PLANTED-SSLPASSWORD", "PLANTED-QUERY"):
        assert secret not in result.stdout + result.stderr
        assert not [name for name, _ in written if secret in name]
        assert not [name for name, content in written if secret.encode() in content]
        assert all(secret not in dump for dump in dumps)


# --- Property: whatever a user writes, validate accepts it (and then it runs) or names a line; it never raises. ---

_VALID = yaml.safe_load(TINY_STUDY)
_ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-2, 5), max_size=3),
    st.dictionaries(st.sampled_from(["low", "high", "step", "log", "choices", "x"]), st.integers(-2, 9), max_size=3),
)
# Snippets a hand-written YAML goes wrong with: merges, anchors, tags, tabs, flow syntax, stray characters.
_YAML_SNIPPETS = ["<<: 1", "<<: [1, 2]", "x: &a [*a]", "y: *nowhere", "z: !!int ten", "\t- a", "{", "]", ": :", "'"]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        found += [path for key, value in node.items() for path in _paths(value, (*prefix, key))]
    elif isinstance(node, list):
        found += [path for index, value in enumerate(node) for path in _paths(value, (*prefix, index))]
    return found


@st.composite
def _mutated_studies(draw: st.DrawFn) -> str:
    """TINY_STUDY with a key dropped, added or retyped, a value replaced, or a YAML snippet spliced in."""
    kind = draw(st.sampled_from(["replace", "drop", "add", "snippet"]))
    if kind == "snippet":
        lines = TINY_STUDY.splitlines()
        at = draw(st.integers(0, len(lines)))
        indent = " " * draw(st.sampled_from([0, 2, 4]))
        lines.insert(at, indent + draw(st.sampled_from(_YAML_SNIPPETS)))
        return "\n".join(lines) + "\n"
    study = copy.deepcopy(_VALID)
    path = draw(st.sampled_from(_paths(study)[1:]))
    parent = functools.reduce(lambda node, key: node[key], path[:-1], study)
    if kind == "replace":
        parent[path[-1]] = draw(_ODD_VALUES)
    elif kind == "drop":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.sampled_from(["extra", "lr", "modes", "name", "devices", "low"]))] = draw(_ODD_VALUES)
    else:
        parent.append(draw(_ODD_VALUES))
    return yaml.safe_dump(study, sort_keys=False, allow_unicode=True)


def _accepted_or_named(text: str) -> Study | None:
    """The invariant: a Study, or a StudyError each of whose issues names a line; anything else fails the test."""
    try:
        return parse_study(text, "s.yaml")
    except StudyError as error:
        assert error.issues and all(issue.line is not None for issue in error.issues), str(error)
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_studies())
def test_a_mutated_study_is_accepted_or_refused_naming_a_line(text: str) -> None:
    _accepted_or_named(text)


# Values that validate may accept or refuse (each valid more often than not, so that some runs happen): the
# accepted ones must get their trial past setup.
_RUN_MUTATIONS = st.fixed_dictionaries(
    {
        "modes": st.integers(1, 4) | st.integers(-1, 12),
        "n_layers": st.integers(1, 3) | st.integers(-1, 0),
        "resolution": st.sampled_from([17, 9, 5, 20]),
        "batch_size": st.integers(1, 16) | st.just(0),
        "lr_high": st.sampled_from([1e-2, 1e-3, float("inf")]),
        "devices": st.sampled_from([1, "auto", 0]),
    }
)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_RUN_MUTATIONS)
@example({"modes": 4, "n_layers": 1, "resolution": 9, "batch_size": 3, "lr_high": 1e-3, "devices": "auto"})
def test_an_accepted_mutation_gets_a_trial_past_setup(tmp_path: Path, values: dict[str, Any]) -> None:
    from sweeplab.run import run_study

    study = copy.deepcopy(_VALID)
    model = study["models"][0]
    model["params"]["n_layers"] = values["n_layers"]
    model["search"]["modes"] = {"low": 1, "high": values["modes"]}
    study["data"]["params"]["resolution"] = values["resolution"]
    study["search"]["batch_size"] = values["batch_size"]
    study["search"]["lr"]["high"] = values["lr_high"]
    study["trainer"] |= {"devices": values["devices"], "max_epochs": 1}
    resolved = _accepted_or_named(yaml.safe_dump(study, sort_keys=False))
    if resolved is None:
        return
    folder = tmp_path / f"run-{uuid.uuid4().hex[:8]}"
    storage = f"sqlite:///{folder}/optuna.db"
    run_study(resolved, storage, f"sqlite:///{folder}/mlflow.db", n_trials=1)
    (trial,) = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get(REASON_ATTR)


def test_no_test_skips_over_a_missing_hard_dependency() -> None:
    # A broken install of torch or Lightning must fail the suite, not skip the tests that need them.
    requirements = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    hard = {re.split(r"[\[<>=~! ]", requirement)[0].replace("-", "_").lower() for requirement in requirements}
    assert {"torch", "pytorch_lightning", "optuna", "mlflow"} <= hard
    skipping = [
        f"{path.name}: {module}"
        for path in sorted((REPO / "tests").glob("*.py"))
        for module in re.findall(r"importorskip\(\s*['\"]([\w.]+)['\"]", path.read_text())
        if module.split(".")[0].lower() in hard
    ]
    assert not skipping, skipping


def test_the_fno_grid_check_agrees_with_the_layers() -> None:
    # validate's static check and a real forward pass accept exactly the same grids, padding included.
    import torch

    from sweeplab_modules.constraints import fno_grid_problem
    from sweeplab_modules.operators.fno import FNO

    disagreements = []
    for spatial_dims, modes, n, padding, fraction in itertools.product(
        (1, 2), range(1, 6), range(2, 11), (0, 3), (0.0, 0.25)
    ):
        params = {"modes": modes, "padding": padding, "padding_fraction": fraction}
        model = FNO(1, 1, spatial_dims=spatial_dims, width=2, n_layers=1, projection_width=2, **params)
        try:
            model(torch.zeros(1, 1, *(n,) * spatial_dims))
            runs = True
        except ValueError:
            runs = False
        if runs != (fno_grid_problem(params, (n,) * spatial_dims) is None):
            disagreements.append((spatial_dims, modes, n, padding, fraction))
    assert not disagreements
