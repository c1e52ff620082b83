"""The CPUs a study may use, and how many of them other processes keep busy.

torch's default of one intra-op thread per core assumes the machine is ours. On a shared machine, threads beyond the
cores that are free wait on each other at every parallel region: beside 2 busy processes on 2 cores the quickstart
took 5.3x its idle time with 2 threads per trial, 1.85x with 1 (BENCHMARKS.md, "Sweeps on a busy machine").
``TrialThreads`` sizes each trial's threads to the CPUs left free, measured from ``/proc/stat`` between one trial
start and the next.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

__all__ = ["TrialThreads", "usable_cpus"]

# Long enough that a single reading of the kernel's tick counters (100 per second) means something.
_MIN_INTERVAL = 0.25


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (containers, Slurm)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, math.floor(quota))) if quota is not None else cpus


def _cgroup_quota() -> float | None:
    """CPUs' worth of time the cgroup may use per period (cgroup v2 ``cpu.max``, v1 ``cfs_quota_us``), if limited."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, IndexError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 else None
    except (OSError, ValueError):
        return None


def _busy_seconds(cpus: set[int]) -> float | None:
    """CPU seconds all processes have spent on ``cpus`` since boot (None where there is no ``/proc/stat``)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu" and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
            busy += user + nice + system + irq + softirq + steal
    return busy / ticks


def _own_seconds() -> float:
    """CPU seconds of this process's threads, and of its children that ended (data-generation workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class TrialThreads:
    """torch intra-op threads for each trial: the study's ``num_threads`` if it sets one; otherwise the usable
    CPUs that other processes left free since the last trial started, shared among the ``n_jobs`` trials that run
    at once in this process (at least 1). Where the load cannot be read, the usable CPUs shared among ``n_jobs``."""

    def __init__(self, fixed: int | None, n_jobs: int) -> None:
        self.fixed = fixed
        self.n_jobs = n_jobs
        self.cpus = usable_cpus()
        self._affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(self.cpus))
        self._last = self._reading()
        self._threads = max(1, self.cpus // n_jobs)

    def _reading(self) -> tuple[float, float | None, float]:
        return time.monotonic(), _busy_seconds(self._affinity), _own_seconds()

    def busy_elsewhere(self) -> float | None:
        """CPUs' worth of work other processes did since the last reading; None where it cannot be read, or too
        soon after the last reading to tell (then the interval grows until the next call)."""
        now = self._reading()
        then = self._last
        if now[0] - then[0] < _MIN_INTERVAL or then[1] is None or now[1] is None:
            return None
        self._last = now
        return max(0.0, (now[1] - then[1]) - (now[2] - then[2])) / (now[0] - then[0])

    def for_next_trial(self) -> int:
        """The threads the next trial trains with (the last trial's number when the load cannot be told)."""
        if self.fixed is not None:
            return self.fixed
        others = self.busy_elsewhere()
        if others is not None:
            free = self.cpus - round(others)
            self._threads = max(1, min(self.cpus // self.n_jobs, free // self.n_jobs))
        return self._threads
