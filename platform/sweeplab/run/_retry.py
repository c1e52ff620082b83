"""Training a trial again after it ran out of memory beside other trials on its device: at most ``MAX_ATTEMPTS``
times, each attempt in a run of its own, waiting for room on the device in between."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sweeplab.run._placement import DevicePlacement, release_device_memory
from sweeplab.training import TrialResult, training_on

if TYPE_CHECKING:
    import optuna

MAX_ATTEMPTS = 3
"""How many times a trial trains at most: the first time, and after running out of memory beside other trials."""


def is_out_of_memory(error: BaseException) -> bool:
    """A device ran out of memory: PyTorch's allocator, or a CUDA library's own allocation (cuFFT, cuBLAS)."""
    import torch

    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("out of memory" in text or "ALLOC_FAILED" in text)


def train_until_it_fits(
    attempt: Callable[[int], TrialResult],
    retried: Callable[[str], None],
    trial: optuna.Trial,
    device: int | None,
    placement: DevicePlacement,
    stop: threading.Event,
) -> TrialResult:
    """``attempt(k)`` on ``device`` for k = 1, 2, ...: again when attempt k ran out of memory while other trials of
    the study were on the device (they may be why), after ``retried(reason)`` and once there is room. Any other
    error, or running out of memory alone or for the last time, propagates; so does ``StudyInterrupted``."""
    from sweeplab.training._callbacks import StudyInterrupted

    number = 0
    while True:
        number += 1
        if stop.is_set():
            raise StudyInterrupted()
        try:
            with training_on(device):
                return attempt(number)
        except Exception as error:
            # Trials that wait count as others: one that has just freed its memory may be why this one ran out.
            training, waiting = placement.others_on(trial, device) if is_out_of_memory(error) else (0, 0)
            if not training + waiting or number == MAX_ATTEMPTS:  # not memory, or it does not fit alone
                raise
            where, others = placement.label(device), training + waiting
            reason = f"out of memory on {where} beside {others} other trial(s), attempt {number}: {error}"
        # After the except block: the error's traceback no longer holds the attempt's tensors.
        retried(reason)
        release_device_memory()
        if not placement.wait_for_room(trial, device, max(training, 1), stop):
            raise StudyInterrupted()
