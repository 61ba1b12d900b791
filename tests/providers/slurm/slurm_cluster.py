"""A real single-host Slurm cluster for the tests: munged, slurmctld and slurmd on
127.0.0.1, with everything (key, socket, config, state, spool, logs) in one directory.

Started once per test session (`session_cluster`), shared by tests/providers/slurm
and the conformance kit; stopped at the end of the session. Needs Debian's
`slurmctld slurmd slurm-client munge` and root (slurmd starts jobs as their user).
The cluster has one node with every CPU, and one GPU gres backed by /dev/zero: a job
that asks for `--gres=gpu:1` is allocated it, and torch finds no CUDA device there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
MIN_JOB_AGE = 2
"""Seconds a finished job stays in squeue: short, so that the tests see jobs leave the
queue and the provider rely on its outcome records, as on a busy cluster."""


def missing() -> str | None:
    """Why a cluster cannot start here, or None."""
    absent = [b for b in BINARIES if shutil.which(b) is None]
    if absent:
        return (f"Slurm is not installed ({', '.join(absent)} not on PATH): "
                "apt-get install slurmctld slurmd slurm-client munge")
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    root: Path
    conf: Path
    node: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *argv: str) -> str:
        return subprocess.run(argv, env={**os.environ, **self.env}, capture_output=True,
                              text=True, check=True, timeout=30).stdout

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
                         for p in sorted((self.root / "log").glob("*")))


def start(root: Path) -> Cluster:
    node = socket.gethostname().split(".")[0]
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    sock = root / "munge" / "munge.socket"
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
    conf = root / "slurm.conf"
    conf.write_text(f"""\
ClusterName=mlformtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge={MIN_JOB_AGE}
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mb} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    (root / "gres.conf").write_text(f"NodeName={node} Name=gpu File=/dev/zero\n")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = Cluster(root, conf, node)
    out = open(root / "log" / "daemons.out", "ab")  # noqa: SIM115 - the daemons' for life
    try:
        cluster.procs.append(subprocess.Popen(
            ["munged", "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
             f"--log-file={root / 'log' / 'munged.log'}",
             f"--pid-file={root / 'munge' / 'munged.pid'}",
             f"--seed-file={root / 'munge' / 'munged.seed'}"], stdout=out, stderr=out))
        _until(lambda: sock.exists(), "munged to create its socket", cluster)
        for daemon in ("slurmctld", "slurmd"):
            cluster.procs.append(subprocess.Popen([daemon, "-D", "-f", str(conf)], env=env,
                                                  stdout=out, stderr=out))
        _until(lambda: _idle(cluster), "the node to be idle in sinfo", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _idle(cluster: Cluster) -> bool:
    try:
        return cluster.run("sinfo", "--noheader", "--Node", "--format=%T").strip() == "idle"
    except subprocess.SubprocessError:
        return False


def _until(ready, what: str, cluster: Cluster, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for proc in cluster.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}) while waiting "
                                   f"for {what}\n{cluster.logs()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}\n{cluster.logs()}")
        time.sleep(0.2)


def session_cluster(request: pytest.FixtureRequest) -> Cluster:
    """The session's cluster, started on first use; SLURM_CONF names it in this process's
    environment (which the provider and the `mlform` commands inherit) until the end."""
    why = missing()
    if why:
        pytest.skip(why)
    config = request.config
    cluster = getattr(config, "_mlform_slurm_cluster", None)
    if cluster is None:
        factory = request.getfixturevalue("tmp_path_factory")
        cluster = start(factory.mktemp("slurm", numbered=True))
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(cluster.conf)

        def stop() -> None:
            cluster.stop()
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous

        config.add_cleanup(stop)
        config._mlform_slurm_cluster = cluster  # type: ignore[attr-defined]
    return cluster
