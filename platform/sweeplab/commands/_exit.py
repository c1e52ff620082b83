"""The exit statuses of ``sweeplab`` commands, and what the user reads when a command fails."""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran and could not do its work (a study that cannot be compared, no storage to list)."""
EXIT_INVALID = 2
"""Bad input: a study file, a name or a parameter; nothing was written."""
EXIT_UNAVAILABLE = 3
"""A store or service (the Optuna storage, the MLflow tracking store or server) cannot be reached or written, at
start or for longer than ``heartbeat.outage_limit``; the same command resumes once it is back."""
EXIT_INTERRUPTED = 130
"""Ctrl-C or SIGTERM: the study's state is saved, the same command resumes it (128 + SIGINT)."""

DEBUG_HINT = "run with --debug or SWEEPLAB_DEBUG=1 for the traceback"


def report_failure(error: BaseException) -> int:
    """The exit status for an error no command handled, after one line on stderr saying what happened."""
    from sweeplab._stores import StoreUnavailableError, lost_connection, one_line

    if isinstance(error, KeyboardInterrupt):
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(error, StoreUnavailableError):
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    lost = lost_connection(error)
    if lost is not None:
        print(f"error: a store became unreachable: {one_line(lost)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(f"error: {type(error).__name__}: {error} ({DEBUG_HINT})", file=sys.stderr)
    return EXIT_FAILED
