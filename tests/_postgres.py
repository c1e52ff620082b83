"""A throwaway PostgreSQL cluster for the tests: initdb into a temporary folder, a free port on 127.0.0.1, trust
authentication, stopped and deleted at the end. PostgreSQL refuses to run as root (CI runs as root): then the
cluster belongs to the ``postgres`` system user and its commands run through ``runuser``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # the newest installed version first
SERVICE_USER = "postgres"


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    for folder in [*BIN_DIRS, *([Path(found).parent] if (found := shutil.which("pg_ctl")) else [])]:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


@dataclass(frozen=True)
class Cluster:
    bin: Path
    data: Path
    port: int
    as_user: tuple[str, ...]  # the command prefix that runs a PostgreSQL program as the cluster's owner
    options: str  # the server's command line options (port, address, no fsync)

    def url(self, database: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [*self.as_user, str(self.bin / program), *args], capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)}: {result.stdout}{result.stderr}")
        return result.stdout

    def create_database(self, name: str) -> str:
        """A fresh, empty database; returns its psycopg URL."""
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def restart(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "restart", "-l", str(self.data / "log"))

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-o", self.options, "-w", "start", "-l", str(self.data / "log"))

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def throwaway_cluster(bin_dir: Path) -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="sweeplab-pg-"))
    as_user: tuple[str, ...] = ()
    if os.geteuid() == 0:
        shutil.chown(root, SERVICE_USER)
        as_user = ("runuser", "-u", SERVICE_USER, "--")
    port = _free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    cluster = Cluster(bin_dir, root / "data", port, as_user, options)
    try:
        cluster.run("initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        cluster.start()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster.run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
