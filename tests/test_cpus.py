"""Threads per trial on a shared machine: the usable CPUs, less those other processes keep busy."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from sweeplab._cpus import TrialThreads, usable_cpus

linux_only = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat")


def test_a_study_that_sets_its_threads_gets_them() -> None:
    assert TrialThreads(3, n_jobs=1).for_next_trial() == 3


def test_trials_at_once_share_the_cpus() -> None:
    assert TrialThreads(None, n_jobs=usable_cpus()).for_next_trial() == 1


@linux_only
def test_a_process_pinned_to_one_cpu_trains_with_one_thread() -> None:
    script = (
        "import os, time; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from sweeplab._cpus import TrialThreads, usable_cpus\n"
        "threads = TrialThreads(None, 1); time.sleep(0.3)\n"
        "print(usable_cpus(), threads.for_next_trial())"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["1", "1"]


@linux_only
def test_every_cpu_busy_elsewhere_leaves_one_thread() -> None:
    cpus = usable_cpus()
    threads, measured = TrialThreads(None, n_jobs=1), TrialThreads(None, n_jobs=1)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpus)]
    try:
        time.sleep(1.5)
        assert measured.busy_elsewhere() == pytest.approx(cpus, abs=0.6)
        assert threads.for_next_trial() == 1
    finally:
        for process in busy:
            process.kill()
            process.wait()


@linux_only
def test_own_work_does_not_count_as_busy() -> None:
    threads = TrialThreads(None, n_jobs=1)
    started = time.process_time()
    while time.process_time() - started < 0.5:  # this process keeps one CPU busy
        pass
    others = threads.busy_elsewhere()
    assert others is not None and others < 0.5 + _background_load()


def test_a_reading_right_after_the_last_keeps_the_last_decision() -> None:
    threads = TrialThreads(None, n_jobs=1)
    first = threads.for_next_trial()
    started = time.monotonic()
    assert threads.for_next_trial() == first and time.monotonic() - started < 0.1  # no waiting at a trial start


def _background_load() -> float:
    """What other programs of the test machine (a CI runner beside other jobs) may add."""
    return os.getloadavg()[0]
