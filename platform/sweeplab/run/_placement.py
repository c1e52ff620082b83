"""Where a trial trains: the least busy GPU of its host, and room on that GPU after running out of memory.

Several trials share a GPU when a study runs ``budget.n_jobs`` trials at once or several ``sweeplab worker``
processes on one machine. Each trial records its device on its Optuna trial (``DEVICE_ATTR``: ``<host>/<GPU uuid>`` or
``<host>/cpu``, with `` (waiting for memory)`` appended while it waits), so the trials of a device are counted the
same way for threads of one process and for worker processes, whatever GPUs each process sees: from the study's
storage.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import threading
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from sweeplab.record import DEVICE_ATTR

if TYPE_CHECKING:
    import optuna

WAITING = "(waiting for memory)"


def release_device_memory() -> None:
    """Give a finished trial's GPU memory back to the other trials on the device, in this process and in others:
    its module and Trainer refer to each other, so only the cycle collector frees them, and PyTorch's caching
    allocator keeps freed blocks until asked."""
    import torch

    if torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()


class DevicePlacement:
    """Spreads one study's trials over this host's GPUs and lets a trial that ran out of memory wait for room.

    Trials are placed only when each trains on one device (``trainer.devices: 1``) and the accelerator is, or
    resolves to, CUDA; otherwise Lightning places them as the study says. ``lock`` excludes the other processes of
    the study while a trial chooses its GPU. ``gpu_ids`` names the GPUs this process sees, in its index order
    (default: their UUIDs).
    """

    def __init__(
        self,
        accelerator: str,
        devices: int | str,
        lock: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
        gpu_ids: list[str] | None = None,
        poll: float = 1.0,
    ) -> None:
        self.host = platform.node()
        self.gpu_ids = self._visible_gpus(accelerator, devices) if gpu_ids is None else gpu_ids
        self.poll = poll
        self._lock = lock
        self._choosing = threading.Lock()

    @staticmethod
    def _visible_gpus(accelerator: str, devices: int | str) -> list[str]:
        if devices != 1 or accelerator not in ("auto", "gpu", "cuda"):
            return []
        import torch

        if not torch.cuda.is_available():
            return []
        properties = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
        return [str(getattr(p, "uuid", f"cuda:{i}")) for i, p in enumerate(properties)]

    def label(self, index: int | None) -> str:
        return f"{self.host}/cpu" if index is None else f"{self.host}/{self.gpu_ids[index]}"

    def claim(self, trial: optuna.Trial, stop: threading.Event) -> int | None:
        """The GPU for ``trial``, recorded on it: the one with the fewest trials of the study (training or waiting
        for memory; ties: the lowest index), once no trial waits for memory there (a new trial does not take the
        room a waiting one waits for). None when trials are not placed or ``stop`` is set."""
        if not self.gpu_ids:
            trial.set_user_attr(DEVICE_ATTR, self.label(None))
            return None
        while True:
            with self._choosing, self._lock():
                running = self._others(trial)
                load = {i: self._count(running, i, waiting=None) for i in range(len(self.gpu_ids))}
                index = min(load, key=lambda i: (load[i], i))
                if not any(self._on(t, index, waiting=True) for t in running):
                    trial.set_user_attr(DEVICE_ATTR, self.label(index))
                    return index
            if self._pause(trial, stop):
                return None

    def others_on(self, trial: optuna.Trial, index: int | None) -> tuple[int, int]:
        """How many other trials of the study are on the device of ``trial``: (training, waiting for memory)."""
        running = self._others(trial)
        return self._count(running, index, waiting=False), self._count(running, index, waiting=True)

    def wait_for_room(self, trial: optuna.Trial, index: int | None, training: int, stop: threading.Event) -> bool:
        """Wait until fewer than ``training`` other trials train on the device and no trial with a lower number
        waits for it (trials that ran out of memory together train again one after the other, in the order of
        their numbers). False when ``stop`` is set first."""
        trial.set_user_attr(DEVICE_ATTR, f"{self.label(index)} {WAITING}")
        try:
            while True:
                running = self._others(trial)
                now_training = self._count(running, index, waiting=False)
                ahead = any(self._on(t, index, waiting=True) and t.number < trial.number for t in running)
                if now_training < training and not ahead:
                    return True
                if self._pause(trial, stop):
                    return False
        finally:
            trial.set_user_attr(DEVICE_ATTR, self.label(index))

    def _pause(self, trial: optuna.Trial, stop: threading.Event) -> bool:
        """Wait one poll interval (True: ``stop`` was set), after failing the trials of lost workers as Optuna does
        before each new trial: a dead worker's trial must not hold a device that others wait for."""
        from optuna.exceptions import ExperimentalWarning
        from optuna.storages import fail_stale_trials

        from sweeplab._stores import lost_connection

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                fail_stale_trials(trial.study)
        except Exception as error:  # the database is away for a moment: keep waiting, as the runner does
            if lost_connection(error) is None:
                raise
        return stop.wait(self.poll)

    def _count(self, trials: list[optuna.trial.FrozenTrial], index: int | None, waiting: bool | None) -> int:
        return sum(self._on(t, index, waiting) for t in trials)

    def _on(self, other: optuna.trial.FrozenTrial, index: int | None, waiting: bool | None) -> bool:
        """Whether ``other`` is on device ``index``: training (``waiting`` False), waiting for memory (True), or
        either (None)."""
        label, device = self.label(index), other.user_attrs.get(DEVICE_ATTR)
        if waiting is None:
            return device in (label, f"{label} {WAITING}")
        return device == (f"{label} {WAITING}" if waiting else label)

    @staticmethod
    def _others(trial: optuna.Trial) -> list[optuna.trial.FrozenTrial]:
        from optuna.trial import TrialState

        running = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return [t for t in running if t.number != trial.number]
