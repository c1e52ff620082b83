"""What a run records so it can be trusted and repeated: versions, the git commit, the host."""

from __future__ import annotations

import platform
import re
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


# The places a URL carries a password: after the user name (``scheme://user:secret@host``), and query parameters
# that name one (``?password=``, ``sslpassword=``, ``passphrase``, ``pwd``, ``secret``, ``token``; any case).
_USERINFO_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):[^\s]*@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;][^=&;\s]*(?:pass(?:word|wd|phrase)|pwd|secret|token)[^=&;\s]*)=[^&;#\s]*", re.IGNORECASE
)


def redacted(text: str) -> str:
    """``text`` (a URL, a command line, a message) with every password a URL in it carries replaced by ``***``: the
    one function for everything recorded or printed."""
    text = _USERINFO_PASSWORD.sub(r"\g<head>:***@", text)
    return _SECRET_QUERY.sub(r"\g<key>=***", text)


def secret_parts(url: str) -> list[str]:
    """The parts of ``url`` that carry a password, named for an error message (empty when there are none)."""
    parts = ["the password after the user name"] if _USERINFO_PASSWORD.search(url) else []
    parts += [f"query parameter {match['key'][1:]!r}" for match in _SECRET_QUERY.finditer(url)]
    return parts
