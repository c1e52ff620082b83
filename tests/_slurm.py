"""A throwaway single-node Slurm cluster for the tests: munged, slurmctld and slurmd from Debian's ``slurm-wlm`` and
``munge``, on free ports of 127.0.0.1, with a configuration, a munge key, state and logs in a temporary folder;
stopped and deleted at the end. Clients find it through ``SLURM_CONF``. The daemons run as root (CI runs as root);
elsewhere the fixture says why it cannot start."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


def missing_programs() -> list[str]:
    return [program for program in PROGRAMS if shutil.which(program) is None]


@dataclass(frozen=True)
class SlurmCluster:
    conf: Path
    folder: Path

    @property
    def environment(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, timeout: float = 30) -> str:
        result = subprocess.run(command, capture_output=True, text=True, env=self.environment, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stdout}{result.stderr}")
        return result.stdout

    def jobs(self, job_id: str) -> list[str]:
        """The array's tasks still queued or running, as ``<array>_<task> STATE`` lines."""
        out = self.run("squeue", "-h", "-r", "-j", job_id, "-o", "%i %T")
        return [line for line in out.splitlines() if line.strip()]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _config(folder: Path, controller_port: int, node_port: int, cpus: int) -> str:
    # One node, "localhost", that runs every array task at once: each takes one of `cpus` (over-subscribed: the
    # workers of a test are light) and the node's real core count is not checked against it.
    return f"""\
ClusterName=sweeplab-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket
SlurmctldPort={controller_port}
SlurmdPort={node_port}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@contextmanager
def throwaway_cluster(cpus: int = 4) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd; wait until the node is idle; stop them all at the end."""
    folder = Path(tempfile.mkdtemp(prefix="sweeplab-slurm-"))
    processes: list[subprocess.Popen[bytes]] = []
    outputs = []
    try:
        for sub in ("state", "spool"):
            (folder / sub).mkdir()
        key = folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        folder.chmod(0o711)  # munged wants its socket's folder open to all, and nobody else writing there
        controller_port, node_port = _free_ports(2)
        conf = folder / "slurm.conf"
        conf.write_text(_config(folder, controller_port, node_port, cpus))
        cluster = SlurmCluster(conf, folder)
        munge = [
            "munged", "--foreground", f"--key-file={key}", f"--socket={folder}/munge.socket",
            f"--pid-file={folder}/munged.pid", f"--log-file={folder}/munged.log", f"--seed-file={folder}/munge.seed",
        ]  # fmt: skip
        for command in (munge, ["slurmctld", "-D", "-i"], ["slurmd", "-D", "-N", "localhost"]):
            outputs.append(open(folder / f"{command[0]}.out", "wb"))  # noqa: SIM115 - closed at the end
            processes.append(subprocess.Popen(command, env=cluster.environment, stdout=outputs[-1], stderr=outputs[-1]))
            time.sleep(0.5)
        deadline = time.monotonic() + 60
        while True:
            try:
                if "idle" in cluster.run("sinfo", "-h", "-o", "%T"):
                    break
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            dead = [p.args[0] for p in processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                written = [f for f in folder.glob("*.*") if f.suffix in (".log", ".out")]
                logs = "".join(f.read_text(errors="replace")[-2000:] for f in written)
                raise RuntimeError(f"Slurm did not start ({', '.join(dead) or 'no idle node'}): {logs}")
            time.sleep(0.5)
        yield cluster
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for output in outputs:
            output.close()
        shutil.rmtree(folder, ignore_errors=True)
