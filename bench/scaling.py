"""Scaling out: finished trials per minute with 1, 2 and 4 `sweeplab worker` processes on one study, on
PostgreSQL (a throwaway cluster) and on SQLite, with short trials.

Each measurement is a fresh study of ``--trials`` trials on fresh stores; the workers start together. Throughput is
counted over the window in which all k workers were running trials (from the last worker's first trial start to
the first worker's last trial end, from the MLflow runs and their ``sweeplab.worker`` tag): trials are counted in
that window in proportion to the part of them inside it, so process start-up (imports, opening the stores, which
on a busy machine staggers the workers by seconds) and the tail of the study are outside it. Efficiency is
throughput with k workers over k times that with one (k: the workers that ran trials); the goal is >= 0.9 up to
the number of cores. Lost trials (budget minus completed) must be zero.

    python bench/scaling.py --trials 60 --epochs 8 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

Stores = Callable[[str, Path], tuple[str, str]]  # fresh (storage, tracking) URLs for a label and a folder
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the throwaway PostgreSQL cluster and the tiny study of the tests

from _postgres import postgres_bin, throwaway_cluster  # noqa: E402
from conftest import TINY_STUDY  # noqa: E402


def study_text(trials: int, epochs: int) -> str:
    return TINY_STUDY.replace("  n_trials: 3", f"  n_trials: {trials}").replace(
        "  max_epochs: 2", f"  max_epochs: {epochs}"
    )


def measure(folder: Path, storage: str, tracking: str, workers: int) -> tuple[float, int, int, int]:
    """Trials per minute while all workers that ran trials ran them, how many workers ran trials (one that
    finished starting after the budget was taken ran none), trials completed, trials run twice."""
    study_file = folder / "study.yaml"
    command = [sys.executable, "-m", "sweeplab", "worker", str(study_file), "--storage", storage]
    processes = [
        subprocess.Popen(
            [*command, "--tracking-uri", tracking], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(workers)
    ]
    for process in processes:
        _, errors = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"a worker exited with {process.returncode}: {errors.decode()[-2000:]}")
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    repeated = len(complete) - len({tuple(sorted(t.params.items())) for t in complete})
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("tiny").experiment_id
    runs = [r for r in client.search_runs([experiment], max_results=10000) if "sweeplab.worker" in r.data.tags]
    spans: dict[str, list[tuple[int, int]]] = {}
    for run in runs:
        spans.setdefault(run.data.tags["sweeplab.worker"], []).append((run.info.start_time, run.info.end_time))
    start = max(min(s for s, _ in worker) for worker in spans.values())
    end = min(max(e for _, e in worker) for worker in spans.values())
    if end <= start:
        raise RuntimeError("the workers never ran trials at the same time: make the study longer (--trials)")
    inside = sum(max(0, min(e, end) - max(s, start)) / (e - s) for worker in spans.values() for s, e in worker)
    return inside / (end - start) * 60_000, len(spans), len(complete), repeated


@contextlib.contextmanager
def backends(names: list[str]) -> Iterator[list[tuple[str, Stores]]]:
    """(name, a function of a label that gives fresh (storage, tracking) URLs) for each backend asked for."""
    found: list[tuple[str, Stores]] = []
    with contextlib.ExitStack() as stack:
        if "postgresql" in names:
            bin_dir = postgres_bin()
            if bin_dir is None:
                print("no PostgreSQL binaries: skipping PostgreSQL", file=sys.stderr)
            else:
                cluster = stack.enter_context(throwaway_cluster(bin_dir))
                found.append(
                    (
                        "postgresql",
                        lambda label, _f: (
                            cluster.create_database(f"{label}_o"),
                            cluster.create_database(f"{label}_m"),
                        ),
                    )
                )
        if "sqlite" in names:
            found.append(
                ("sqlite", lambda label, folder: (f"sqlite:///{folder}/optuna.db", f"sqlite:///{folder}/mlflow.db"))
            )
        yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60, help="trials per study (default 60)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per trial (default 8)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts (default 1 2 4)")
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"])
    args = parser.parse_args()
    os.environ.setdefault("SWEEPLAB_DATA_DIR", tempfile.mkdtemp(prefix="sweeplab-bench-data-"))
    print(f"{os.cpu_count()} cores, {args.trials} trials of {args.epochs} epochs per study\n")
    print("| backend | workers started (ran trials) | trials/min | efficiency | completed | lost | run twice |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with backends(args.backends) as found:
        for name, stores in found:
            single = None
            for workers in args.workers:
                with tempfile.TemporaryDirectory(prefix="sweeplab-scaling-") as tmp:
                    folder = Path(tmp)
                    (folder / "study.yaml").write_text(study_text(args.trials, args.epochs))
                    storage, tracking = stores(f"w{workers}_{int(time.time())}", folder)
                    rate, active, complete, repeated = measure(folder, storage, tracking, workers)
                single = rate if workers == 1 else single
                efficiency = f"{rate / (active * single):.2f}" if single else "-"
                lost = args.trials - complete
                row = [name, f"{workers} ({active})", f"{rate:.1f}", efficiency, complete, lost, repeated]
                print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()
