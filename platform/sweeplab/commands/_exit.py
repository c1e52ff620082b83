"""The exit statuses of ``sweeplab`` commands."""

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran and could not do its work (a study that cannot be compared, no storage to list)."""
EXIT_INVALID = 2
"""Bad input: a study file, a name or a parameter; nothing was written."""
EXIT_INTERRUPTED = 130
"""Ctrl-C or SIGTERM: the study's state is saved, the same command resumes it (128 + SIGINT)."""
