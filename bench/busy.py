"""The quickstart on a busy machine: sweeplab's thread policy against the alternatives, under a controlled load.

Times ``sweeplab run studies/quickstart.yaml`` (fresh stores, the data set already cached, so the trials are what is
timed) once on the machine as it is, then with ``--load`` CPU-bound processes started beside it (pure-Python
loops, as other users' jobs), under each thread policy:

- ``default``: sweeplab's policy (threads sized to the CPUs that other processes leave free, at each trial start);
- ``per-core``: the policy before it, one thread per usable CPU shared among the study's ``n_jobs`` (the study
  sets ``trainer.num_threads`` to that number);
- ``per-core-passive``: the same with ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads sleep instead of spinning while
  they wait);
- ``one``: ``trainer.num_threads: 1``.

Every run is one process, its own result; the idle ``default`` run is the reference of the ratios.

    python bench/busy.py [--load 2] [--policies default per-core per-core-passive one] [--idle-policies default]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from sweeplab._cpus import usable_cpus

QUICKSTART = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"
POLICIES = ("default", "per-core", "per-core-passive", "one")


def study_for(policy: str, folder: Path) -> Path:
    """The quickstart with ``policy``'s ``trainer.num_threads``."""
    spec = yaml.safe_load(QUICKSTART.read_text())
    per_core = max(1, usable_cpus() // spec.get("budget", {}).get("n_jobs", 1))
    threads = {"default": None, "per-core": per_core, "per-core-passive": per_core, "one": 1}[policy]
    if threads is not None:
        spec["trainer"]["num_threads"] = threads
    path = folder / f"quickstart-{policy}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def timed_quickstart(policy: str) -> tuple[float, str]:
    """Seconds of one ``sweeplab run`` of the quickstart under ``policy``, and the threads its trials used."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy == "per-core-passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    with tempfile.TemporaryDirectory() as folder:
        study = study_for(policy, Path(folder))
        stores = ["--storage", f"sqlite:///{folder}/optuna.db", "--tracking-uri", f"sqlite:///{folder}/mlflow.db"]
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "sweeplab", "run", str(study), *stores],
            cwd=folder,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - started
        return seconds, _devices(f"sqlite:///{folder}/mlflow.db")


def _devices(tracking_uri: str) -> str:
    """The trials' device tags, e.g. ``cpu (1 thread) x5, cpu (2 threads) x3``."""
    from collections import Counter

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([experiment.experiment_id], "tags.`sweeplab.role` = 'trial'")
    counts = Counter(run.data.tags.get("sweeplab.device", "?") for run in runs)
    return ", ".join(f"{device} x{n}" for device, n in sorted(counts.items()))


def background_load(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=2, help="CPU-bound background processes (default 2)")
    parser.add_argument("--policies", nargs="*", choices=POLICIES, default=list(POLICIES), help="under the load")
    parser.add_argument("--idle-policies", nargs="*", choices=POLICIES, default=["default"], help="without it")
    args = parser.parse_args()

    from sweeplab.data import load_dataset
    from sweeplab.spec import load_study

    study = load_study(QUICKSTART)
    load_dataset(study.spec.data.name, study.data_params)  # generated once here, outside the timings
    print(f"{usable_cpus()} usable CPUs, load average {os.getloadavg()[0]:.1f} at start; {args.load} busy processes\n")
    print("| machine | thread policy | quickstart s | / idle default | trials' threads |")
    print("| --- | --- | --- | --- | --- |")
    reference = None
    for loaded, policies in ((False, args.idle_policies), (True, args.policies)):
        for policy in policies:
            busy = background_load(args.load) if loaded else []
            try:
                seconds, devices = timed_quickstart(policy)
            finally:
                for process in busy:
                    process.kill()
                    process.wait()
            if reference is None and not loaded and policy == "default":
                reference = seconds
            ratio = f"{seconds / reference:.2f}" if reference else "-"
            machine = f"{args.load} busy processes" if loaded else "idle"
            print(f"| {machine} | {policy} | {seconds:.1f} | {ratio} | {devices} |", flush=True)


if __name__ == "__main__":
    main()
