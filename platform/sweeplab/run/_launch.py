"""``sweeplab submit``: a study's workers as one Slurm job array through submitit, or as local processes through
submitit's local executor (the same path without a scheduler).

Each array task is one ``sweeplab worker``: it joins the study through the shared storage and runs trials until
the budget is reached, so the workers need nothing from each other. A worker that Slurm preempts or stops at its
time limit is requeued by submitit (``WorkerJob`` is checkpointable: it simply starts again); the trial it was
training is failed by the heartbeat of the others and queued again, as for any lost worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import submitit

if TYPE_CHECKING:
    from sweeplab.spec import Study
    from sweeplab.spec._schema import Launcher

STORAGE_VARIABLE = "SWEEPLAB_STORAGE"
TRACKING_VARIABLE = "SWEEPLAB_TRACKING_URI"


class SharedStoreError(ValueError):
    """A store that the workers of a cluster cannot share safely (SQLite from several nodes)."""


class WorkerJob(submitit.helpers.Checkpointable):
    """One worker of a study, as a submitit job. Checkpointable with its own arguments: a requeued worker joins
    the study again. Its stores come from its environment, which Slurm (and the local executor) copies from the
    submitting process: ``submit_workers`` puts them there, so that no URL (and no password in one) is written
    into the job's pickle on the shared file system."""

    def __init__(self, study_path: str) -> None:
        self.study_path = study_path

    def __call__(self) -> int:
        from rich.console import Console

        from sweeplab.run._session import run_study
        from sweeplab.spec import load_study

        storage, tracking_uri = os.environ.get(STORAGE_VARIABLE), os.environ.get(TRACKING_VARIABLE)
        outcome = run_study(load_study(self.study_path), storage, tracking_uri, None, Console(stderr=True))
        return outcome.finished


@dataclass(frozen=True)
class Submission:
    """What was submitted: one submitit job per worker, and the folder of their scripts and logs."""

    jobs: list[submitit.Job[int]]
    folder: Path

    @property
    def job_ids(self) -> list[str]:
        """``<array>_<task>`` on Slurm, process ids locally."""
        return [str(job.job_id) for job in self.jobs]

    @property
    def array_id(self) -> str:
        return self.job_ids[0].split("_")[0]


def check_shared_stores(storage: str, tracking_uri: str) -> None:
    """Workers on several nodes share files over the network, where SQLite's locking is unsafe: refuse it."""
    if storage.startswith("sqlite"):
        raise SharedStoreError(
            f"storage {storage} is a SQLite file, unsafe for workers on several nodes: use a journal file on the "
            "shared file system (storage: journal:////shared/path/study.log) or PostgreSQL"
        )
    if tracking_uri.startswith("sqlite"):
        raise SharedStoreError(
            f"tracking URI {tracking_uri} is a SQLite file, unsafe for workers on several nodes: start a tracking "
            "server on the login node (mlflow server --backend-store-uri sqlite:///mlruns/mlflow.db --host 0.0.0.0) "
            "and pass its http:// URI, or use PostgreSQL"
        )


def submit_workers(
    study: Study,
    study_path: str,
    launcher: Launcher,
    *,
    storage: str,
    tracking_uri: str,
    local: bool,
) -> Submission:
    """Submit ``launcher.workers`` workers of ``study``: a Slurm job array, or (``local``) processes here."""
    os.environ[STORAGE_VARIABLE], os.environ[TRACKING_VARIABLE] = storage, tracking_uri  # the jobs inherit them
    folder = Path(launcher.folder or Path("mlruns") / "slurm" / study.name).resolve()
    cluster = "local" if local else "slurm"
    executor = submitit.AutoExecutor(
        folder=folder, cluster=cluster, slurm_max_num_timeout=launcher.max_requeues, slurm_python=launcher.python
    )
    parameters: dict[str, Any] = {
        "name": f"sweeplab-{study.name}",
        "timeout_min": launcher.time,
        "cpus_per_task": launcher.cpus_per_worker,
        "gpus_per_node": launcher.gpus_per_worker,
        "mem_gb": launcher.mem_gb,  # None: not set, the cluster's default
        "slurm_partition": launcher.partition,
        "slurm_array_parallelism": launcher.workers,
        "slurm_additional_parameters": {key: str(value) for key, value in launcher.sbatch.items()},
        "slurm_setup": list(launcher.setup),
    }
    executor.update_parameters(**parameters)
    # The study file is read again by every worker, from wherever its job starts.
    job = WorkerJob(str(Path(study_path).resolve()))
    with executor.batch():
        jobs = [executor.submit(job) for _ in range(launcher.workers)]
    return Submission(jobs, folder)
