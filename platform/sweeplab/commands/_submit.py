"""``sweeplab submit``: start a study's workers as a Slurm job array (or, with ``--local``, as processes here)."""

from __future__ import annotations

import gc
import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any

from sweeplab.commands._exit import EXIT_FAILED, EXIT_INVALID, EXIT_OK
from sweeplab.commands._study import load_or_report


def submit_command(
    path: str,
    storage: str | None,
    tracking_uri: str | None,
    launcher_flags: Mapping[str, Any],
    *,
    local: bool,
) -> int:
    """Create the study (so that a store that cannot be reached fails here, not in a queued job), then submit its
    workers. ``launcher_flags`` override the study's ``launcher:`` block (None: not given). Locally, wait for the
    workers; on Slurm, print how to follow the job array and return."""
    study = load_or_report(path)
    if study is None:
        return EXIT_INVALID
    from pydantic import ValidationError

    from sweeplab.spec._schema import Launcher

    given = {key: value for key, value in launcher_flags.items() if value is not None}
    try:
        launcher = Launcher.model_validate(study.spec.launcher.model_dump() | given)
    except ValidationError as error:
        for issue in error.errors():
            flag = "--" + str(issue["loc"][0]).replace("_", "-")
            print(f"{flag}: {issue['msg']}", file=sys.stderr)
        return EXIT_INVALID
    from sweeplab.run._launch import STORAGE_VARIABLE, TRACKING_VARIABLE, SharedStoreError, check_shared_stores

    storage = storage or os.environ.get(STORAGE_VARIABLE) or study.spec.storage
    tracking_uri = tracking_uri or os.environ.get(TRACKING_VARIABLE) or study.spec.tracking.uri
    if not local:
        try:
            check_shared_stores(storage, tracking_uri)
        except SharedStoreError as error:
            print(f"{path}: {error}", file=sys.stderr)
            return EXIT_INVALID
        if shutil.which("sbatch") is None:
            print("sbatch is not on PATH: submit from a Slurm login node, or use --local", file=sys.stderr)
            return EXIT_FAILED
    from rich.console import Console

    from sweeplab._provenance import redacted
    from sweeplab.run import StudyRunner
    from sweeplab.run._launch import submit_workers

    console = Console(stderr=True)
    runner = StudyRunner(study, storage, tracking_uri, console=console)
    with runner.session():
        pass
    submission = submit_workers(study, path, launcher, storage=storage, tracking_uri=tracking_uri, local=local)
    where = "local processes" if local else f"Slurm job array {submission.array_id}"
    print(f"submitted {launcher.workers} workers of study {study.name} as {where}: {', '.join(submission.job_ids)}")
    print(f"  logs:     {submission.folder}")
    if not local:
        print(f"  follow:   squeue -j {submission.array_id}")
        print(f"  stop:     scancel {submission.array_id}")
    print(f"  progress: sweeplab studies --storage '{redacted(storage)}'")
    print(f"  browse:   sweeplab ui --tracking-uri '{redacted(tracking_uri)}'")
    if not local:
        return EXIT_OK
    status = EXIT_OK
    for job in submission.jobs:  # locally the command waits, as `sweeplab run` does
        try:
            print(f"worker {job.job_id}: done, {job.result()} trials finished in the study")
        except Exception as error:  # the worker's own exception, raised again here with its log
            print(f"worker {job.job_id} failed: {error}", file=sys.stderr)
            status = EXIT_FAILED
    # submitit's local jobs clean up when collected, which fails once the interpreter is shutting down.
    del job, submission
    gc.collect()
    return status
