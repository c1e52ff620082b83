"""Hostile input (issue 16): what cannot run is refused by ``validate`` with file, line and field, never a
traceback; flags are checked as the study's keys; secrets never reach anything recorded or printed; a trial that
fails for any reason says why."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY_STUDY, write_study

from sweeplab.record import REASON_ATTR
from sweeplab.spec import StudyError, load_study, parse_study
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
        ((f"a{i}",), 23 + i) for i in range(4)  # unknown keys, each at its own line
    ]
    # A mapping with a merge key, named twice: merged once, its written key still beating the merged one.
    text = TINY_STUDY.replace(
        "    params: {n_layers: 2,", "    params: &fixed {<<: {n_layers: 3}, n_layers: 2,"
    ).replace("search:\n  lr", "  - {name: fno2d, label: twin, params: {<<: *fixed, width: 4, modes: 2}}\nsearch:\n  lr")
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
    storage = postgres_cluster.create_database("secret_optuna").replace(
        "postgres@", "postgres:PLANTED-USERINFO@"
    ) + "?sslpassword=PLANTED-SSLPASSWORD"
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
