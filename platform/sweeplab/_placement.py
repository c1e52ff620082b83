"""Where a trial trains: the least busy GPU of its host, and room on that GPU after running out of memory.

Several trials share a GPU when a study runs ``budget.n_jobs`` trials at once or several ``sweeplab worker``
processes on one machine. Each trial records its device on its Optuna trial (``device``: ``<host>/cuda:<i>`` or
``<host>/cpu``, with `` (waiting for memory)`` appended while it waits), so the running trials of a device are
counted the same way for threads of one process and for worker processes: from the study's storage.
"""

from __future__ import annotations

import contextlib
import platform
import threading
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

DEVICE_ATTR = "device"
WAITING = "(waiting for memory)"

_trial_device: ContextVar[int | None] = ContextVar("sweeplab_trial_device", default=None)


@contextlib.contextmanager
def training_on(index: int | None) -> Iterator[None]:
    """Trainers built inside this block (``fit_task``) train on GPU ``index`` (None: as the study says)."""
    token = _trial_device.set(index)
    try:
        yield
    finally:
        _trial_device.reset(token)


def trial_gpu() -> int | None:
    """The GPU that ``training_on`` chose for the trial being built in this thread, if any."""
    return _trial_device.get()


class DevicePlacement:
    """Spreads one study's trials over this host's GPUs and lets a trial that ran out of memory wait for room.

    Trials are placed only when each trains on one device (``trainer.devices: 1``) and the accelerator is, or
    resolves to, CUDA; otherwise Lightning places them as the study says. ``gpus`` overrides the number of GPUs
    found (tests).
    """

    def __init__(self, accelerator: str, devices: int | str, gpus: int | None = None, poll: float = 1.0) -> None:
        self.host = platform.node()
        self.gpus = self._visible_gpus(accelerator, devices) if gpus is None else gpus
        self.poll = poll
        self._choosing = threading.Lock()  # so that two threads of this process do not both take the idlest GPU

    @staticmethod
    def _visible_gpus(accelerator: str, devices: int | str) -> int:
        if devices != 1 or accelerator not in ("auto", "gpu", "cuda"):
            return 0
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0

    def label(self, index: int | None) -> str:
        return f"{self.host}/cpu" if index is None else f"{self.host}/cuda:{index}"

    def claim(self, trial: optuna.Trial) -> int | None:
        """The GPU for ``trial`` (the one with the fewest running trials of the study, else the lowest index),
        recorded on the trial; None when trials are not placed."""
        with self._choosing:
            index = None
            if self.gpus:
                load = self._running(trial)
                index = min(range(self.gpus), key=lambda i: (load[self.label(i)], i))
            trial.set_user_attr(DEVICE_ATTR, self.label(index))
        return index

    def others_on(self, trial: optuna.Trial, index: int | None) -> int:
        """How many other trials of the study train on the device of ``trial`` now (not those waiting for room)."""
        label = self.label(index)
        return sum(t.user_attrs.get(DEVICE_ATTR) == label for t in self._others_running(trial))

    def wait_for_room(self, trial: optuna.Trial, index: int | None, others: int, stop: threading.Event) -> bool:
        """Wait until fewer than ``others`` other trials train on the device and no trial that ran out of memory
        before this one still waits for it (first come, first served: two trials that ran out of memory beside
        each other train again one after the other, not together). False when ``stop`` is set first."""
        label = self.label(index)
        waiting = f"{label} {WAITING}"
        trial.set_user_attr(DEVICE_ATTR, waiting)  # holds no memory now: not counted by the others
        try:
            while True:
                running = self._others_running(trial)
                busy = sum(t.user_attrs.get(DEVICE_ATTR) == label for t in running)
                ahead = any(t.user_attrs.get(DEVICE_ATTR) == waiting and t.number < trial.number for t in running)
                if busy < others and not ahead:
                    return True
                if stop.wait(self.poll):
                    return False
        finally:
            trial.set_user_attr(DEVICE_ATTR, label)

    def _running(self, trial: optuna.Trial) -> Counter[str]:
        return Counter(t.user_attrs.get(DEVICE_ATTR, "") for t in self._others_running(trial))

    @staticmethod
    def _others_running(trial: optuna.Trial) -> list[optuna.trial.FrozenTrial]:
        from optuna.trial import TrialState

        running = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return [t for t in running if t.number != trial.number]
