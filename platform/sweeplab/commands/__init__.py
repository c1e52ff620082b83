"""Every ``sweeplab`` subcommand, one module each; ``sweeplab.cli`` parses the command line and calls them.

A command is a function of plain arguments returning an exit status (``_exit``). Its module imports the heavy
libraries inside the function, so ``sweeplab --help`` and ``sweeplab validate`` answer at once; this package
loads a command's module only when it is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from sweeplab.commands._exit import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    report_failure,
)

_COMMANDS = {
    "compare_command": "_compare",
    "generate_command": "_data",
    "list_command": "_data",
    "models_command": "_models",
    "predict_command": "_predict",
    "replay_command": "_replay",
    "run_command": "_study",
    "studies_command": "_studies",
    "submit_command": "_submit",
    "ui_command": "_ui",
    "validate_command": "_study",
    "worker_command": "_study",
}

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "report_failure",
    *sorted(_COMMANDS),
]


def __getattr__(name: str) -> Any:
    if name in _COMMANDS:
        return getattr(importlib.import_module(f"sweeplab.commands.{_COMMANDS[name]}"), name)
    raise AttributeError(f"module 'sweeplab.commands' has no attribute {name!r}")
