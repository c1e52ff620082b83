"""Interrupts: SIGINT and SIGTERM end a study cleanly (its running trials are queued again), a second one at once."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class InterruptSignal:
    """SIGINT/SIGTERM set an event that running trials check at every batch; a second signal stops at once."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[threading.Event]:
        if threading.current_thread() is not threading.main_thread():
            yield self.event
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self.event
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """A Ctrl-C during the block is held until it ends, then raised as KeyboardInterrupt: for the import of torch,
    whose C++ initialisation a KeyboardInterrupt aborts (pybind11 turns it into std::terminate, or the process dies
    of SIGINT after exiting cleanly)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
