"""Sweep throughput on one GPU: the FNO step (reference formulation against ours) and trials packed k at a time.

(a) Samples/s of one FNO-2D training step (Darcy 85 x 85, width 32, 12 modes, padding 9) at batch 20 and 200,
    the reference formulation against ours, alternating step by step (``bench/spectral.py``'s timing).
(b) Finished trials per hour of a short Darcy FNO study (random search, no pruning, every trial the same number of
    epochs) with k = 1, 2, 4, 8 trials at once: k ``sweeplab worker`` processes on one study (``--mode workers``:
    each its own CUDA context, no shared interpreter lock), or one ``sweeplab run`` with ``budget.n_jobs: k``
    (``--mode threads``). Each k gets fresh SQLite stores; the time runs from starting the processes to the last
    one's exit, so process start-up counts; a second column takes the first trial's start to the last trial's end.
    Each trial gets cores / k CPU threads. The data set is generated once, before any timing.

    python bench/gpu_throughput.py [--ks 1 2 4 8] [--trials 32] [--epochs 10] [--mode workers threads]
    python bench/gpu_throughput.py --dry-run   # tiny settings on the CPU: checks the script, measures nothing
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from optuna.trial import TrialState

from sweeplab.data import load_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spectral import SETTINGS, compare  # noqa: E402

# The FNO paper's Darcy grid (85 x 85, from a 169 x 169 solve here: the same subsampling by 2 as 421 -> 211).
DATA = {"fine_resolution": 169, "resolution": 85, "n_train": 200, "n_val": 100, "n_test": 100, "seed": 0}
DRY_DATA = {"fine_resolution": 33, "resolution": 17, "n_train": 16, "n_val": 8, "n_test": 8, "seed": 0}


def study(data: dict[str, int], trials: int, epochs: int, k: int, mode: str, accelerator: str) -> dict[str, object]:
    return {
        "name": "gpu-throughput",
        "objective": {"metric": "val_rel_l2"},
        "data": {"name": "darcy", "params": data},
        "models": [
            {
                "name": "fno2d",
                "params": {"width": 32, "modes": 12, "n_layers": 4, "padding": 9},
            }
        ],
        "search": {"lr": {"low": 3e-4, "high": 3e-3, "log": True}, "batch_size": 20, "scheduler": "cosine"},
        # The CPU cores shared out the same way in both modes.
        "trainer": {"max_epochs": epochs, "accelerator": accelerator, "seed": 0, "num_threads": threads(k)},
        "sampler": "random",
        "pruner": "none",
        "budget": {"n_trials": trials, "n_jobs": k if mode == "threads" else 1},
        # A worker that finds the rest of the budget in flight checks again after one interval: short, so that
        # the tail of the study is not spent waiting.
        "heartbeat": {"interval": 1, "grace": 30},
    }


def threads(k: int) -> int:
    return max(1, (os.cpu_count() or 1) // k)


def sweep_seconds(mode: str, k: int, arguments: argparse.Namespace, folder: Path) -> tuple[float, float]:
    """Seconds for the whole study with ``k`` trials at once: from starting the processes to the last exit, and
    from the first trial's start to the last trial's end (without process start-up); checks every trial completed."""
    data = DRY_DATA if arguments.dry_run else DATA
    accelerator = "cpu" if arguments.dry_run else "auto"
    spec = study(data, arguments.trials, arguments.epochs, k, mode, accelerator)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    stores = ["--storage", f"sqlite:///{folder}/optuna.db", "--tracking-uri", f"sqlite:///{folder}/mlflow.db"]
    sweeplab = [sys.executable, "-m", "sweeplab"]
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    if mode == "workers":  # the study, its tables and parent run first: the workers then only load them
        subprocess.run([*sweeplab, "worker", str(path), *stores, "--create-only"], check=True, **quiet)
        commands = [[*sweeplab, "worker", str(path), *stores]] * k
    else:
        commands = [[*sweeplab, "run", str(path), *stores]]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, **quiet) for command in commands]
    errors = [process.communicate()[1] for process in processes]
    seconds = time.perf_counter() - started
    failed = [error for process, error in zip(processes, errors, strict=True) if process.returncode != 0]
    if failed:
        raise RuntimeError(f"{mode} k={k}: a process failed:\n{failed[0][-3000:]}")
    trials = optuna.load_study(study_name="gpu-throughput", storage=stores[1]).get_trials(deepcopy=False)
    states = [t.state for t in trials]
    if states.count(TrialState.COMPLETE) != arguments.trials:
        raise RuntimeError(f"{mode} k={k}: {arguments.trials} trials expected to complete, got {states}")
    first = min(t.datetime_start for t in trials if t.datetime_start is not None)
    last = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
    return seconds, (last - first).total_seconds()


def step_rows(arguments: argparse.Namespace) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    setting = SETTINGS[-1]  # the paper's 85 x 85 configuration
    timing = argparse.Namespace(warmup=1, repeats=1 if arguments.dry_run else 20, max_seconds=30.0)
    print("| setting | device | batch | reference samples/s | ours samples/s | ours / reference |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for batch in (2,) if arguments.dry_run else (20, 200):
        seconds = compare(setting, batch, device, timing)
        reference, ours = batch / seconds["reference"], batch / seconds["fast"]
        print(f"| {setting} | {device.type} | {batch} | {reference:.0f} | {ours:.0f} | {ours / reference:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8], help="trials at once")
    parser.add_argument("--trials", type=int, default=32, help="trials per study")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per trial")
    parser.add_argument("--mode", nargs="+", choices=["workers", "threads"], default=["workers"])
    parser.add_argument("--skip-steps", action="store_true", help="only part (b)")
    parser.add_argument("--dry-run", action="store_true", help="tiny settings on the CPU (checks the script)")
    arguments = parser.parse_args()
    if arguments.dry_run:
        arguments.trials, arguments.epochs = min(arguments.trials, 4), 1
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(f"torch {torch.__version__}, {name}, {os.cpu_count()} CPU cores\n")
    if not arguments.skip_steps:
        step_rows(arguments)
        print(flush=True)
    load_dataset("darcy", DRY_DATA if arguments.dry_run else DATA)  # generated once, outside the timings
    print(f"Darcy FNO study: {arguments.trials} trials of {arguments.epochs} epochs\n")
    print("| mode | k trials at once | wall s | trials per hour | x first k | first start to last end s | x first k |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in arguments.mode:
        baseline = None
        for k in arguments.ks:
            with tempfile.TemporaryDirectory(prefix=f"throughput-{mode}-{k}-") as folder:
                wall, trials_span = sweep_seconds(mode, k, arguments, Path(folder))
            baseline = baseline or (wall, trials_span)
            per_hour = arguments.trials / wall * 3600
            print(
                f"| {mode} | {k} | {wall:.1f} | {per_hour:.0f} | {baseline[0] / wall:.2f} | {trials_span:.1f} "
                f"| {baseline[1] / trials_span:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
