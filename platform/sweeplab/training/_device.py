"""Which GPU the trial being built in this thread trains on: the engine's placement chooses, ``fit_task`` reads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

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
