"""What a run records so it can be trusted and repeated: versions, the git commit, the host."""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from sweeplab.record import COMMAND_TAG, GIT_COMMIT_TAG, GIT_DIRTY_TAG, HOST_TAG, VERSION_TAG_PREFIX

_PACKAGES = ("sweeplab", "torch", "pytorch_lightning", "optuna", "mlflow", "numpy")


@cache
def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            found[package] = metadata.version(package.replace("_", "-"))
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def git_state(directory: str | Path) -> dict[str, str]:
    """The commit of the repository holding ``directory`` (the study file's), and whether it had local changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {GIT_COMMIT_TAG: commit, GIT_DIRTY_TAG: str(dirty).lower()}


def provenance_tags(study_file: str | Path) -> dict[str, str]:
    tags = {f"{VERSION_TAG_PREFIX}{name}": version for name, version in versions().items()}
    tags[HOST_TAG] = platform.node()
    tags[COMMAND_TAG] = " ".join(redacted(arg) for arg in [Path(sys.argv[0]).name, *sys.argv[1:]])
    tags.update(git_state(Path(study_file).resolve().parent))
    return tags


def redacted(url: str) -> str:
    """A database URL without its password, fit to record."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
