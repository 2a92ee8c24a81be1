"""A real one-node SLURM cluster on this machine for the session (Debian's slurm-wlm and munge, started as root).

The fixture writes a minimal slurm.conf (the node is this host with the CPUs and memory ``slurmd -C`` reads, no
cgroups, no accounting), starts munged with a key of its own, slurmctld and slurmd on free ports, with every file
under a temporary folder, waits until ``sinfo`` shows the node idle, and stops the three daemons it started (by
their pids) at the end. Where it cannot start (not root, a binary missing) the tests skip and say why; in CI
(``QWEN_TTS_LIT_REQUIRE_SLURM=1``, set by .ci/run) that is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scontrol", "scancel", "srun")
REQUIRED_ENV = "QWEN_TTS_LIT_REQUIRE_SLURM"


def unavailable(reason: str) -> None:
    if os.environ.get(REQUIRED_ENV) == "1":
        pytest.fail(f"the SLURM cluster must start here ({REQUIRED_ENV}=1): {reason}")
    pytest.skip(f"no SLURM cluster: {reason}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def slurm_conf(folder: Path, node_line: str) -> str:
    """The smallest configuration that runs batch jobs, arrays and requeues on one node."""
    controller, node = free_port(), free_port()
    return f"""\
ClusterName=qtltest
SlurmctldHost={socket.gethostname().split(".")[0]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket
SlurmctldPort={controller}
SlurmdPort={node}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerParameters=bf_interval=1
KillWait=5
MinJobAge=300
{node_line} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def node_line() -> str:
    """This machine as ``slurmd -C`` sees it (its real CPUs and RealMemory), without the UpTime line."""
    found = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=60, check=True).stdout
    line = next(line for line in found.splitlines() if line.startswith("NodeName="))
    return line.replace(f"NodeName={line.split()[0].split('=')[1]}", f"NodeName={socket.gethostname().split('.')[0]}")


def stop(pid_file: Path) -> None:
    """Stop one daemon this fixture started, by the pid it wrote, and wait until it is gone."""
    if not pid_file.is_file():
        return
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """SLURM_CONF of a running one-node cluster (set in os.environ for this process and its children)."""
    if os.geteuid() != 0:
        unavailable("the tests start munged, slurmctld and slurmd, which needs root")
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        unavailable(f"missing {', '.join(missing)} (apt-get install slurm-wlm munge; make system-packages)")
    folder = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    (folder / "munge.key").write_bytes(os.urandom(1024))
    (folder / "munge.key").chmod(0o400)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, node_line()))
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    daemons = [folder / "munged.pid", folder / "slurmctld.pid", folder / "slurmd.pid"]
    try:
        names = {"socket": "munge.socket", "key-file": "munge.key", "pid-file": "munged.pid",
                 "log-file": "munged.log", "seed-file": "seed"}  # fmt: skip
        munge = ["munged", "--force", *(f"--{option}={folder / name}" for option, name in names.items())]
        for command in (munge, ["slurmctld", "-f", str(conf)], ["slurmd", "-f", str(conf)]):
            started = subprocess.run(command, capture_output=True, text=True, timeout=60)
            if started.returncode != 0:
                unavailable(f"{command[0]} did not start: {(started.stderr or started.stdout).strip()[-500:]}")
        for _ in range(150):
            idle = subprocess.run(["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, timeout=30)
            if idle.stdout.strip() == "idle":
                break
            time.sleep(0.2)
        else:
            logs = "\n".join((folder / f"{n}.log").read_text()[-1500:] for n in ("slurmctld", "slurmd"))
            unavailable(f"the node never became idle (sinfo: {idle.stdout.strip() or idle.stderr.strip()}):\n{logs}")
        yield conf
    finally:
        subprocess.run(["scancel", "--full", "--user=root"], capture_output=True, timeout=30)  # this cluster's jobs
        for pid_file in reversed(daemons):
            stop(pid_file)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
