"""One real single-node Ray cluster on 127.0.0.1 for a whole test session.

The ray tests (jobs, datasets, models, Serve) and the conformance kit share it: starting
Ray takes seconds and about 2.5 GB, so one process starts it once, on first use, and
stops it at the end. Every port is a free one, so Serve's HTTP proxy is free to bind
what its config asks and two test sessions on one machine do not collide; the cluster
runs in its own process group under its own temp dir, and stopping it kills that group
only (`ray stop --force` would kill every Ray process of the user, another session's
cluster included).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

RAY = Path(sys.executable).parent / "ray"
START_TIMEOUT = 120.0


@dataclass
class RayCluster:
    address: str
    """The dashboard's URL: the Jobs and Serve REST APIs."""
    storage: Path
    """A directory standing for the cluster's shared filesystem."""
    temp_dir: Path
    process: subprocess.Popen = field(repr=False)
    ports: dict[str, int] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            _kill_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        _kill_group(self.process.pid, signal.SIGKILL)
        _kill_leftovers(self.temp_dir)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        shutil.rmtree(self.storage, ignore_errors=True)


def available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return RAY.is_file()


_cluster: RayCluster | None = None


def shared() -> RayCluster:
    """The session's cluster, started on the first call."""
    global _cluster
    if _cluster is None:
        _cluster = start()
        atexit.register(stop_shared)
    return _cluster


def stop_shared() -> None:
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


def start(attempts: int = 3) -> RayCluster:
    """Start a cluster; on a loaded machine Ray's own 30-second wait for the raylet can
    run out, so a start that exits is tried again (with fresh ports)."""
    for attempt in range(1, attempts + 1):
        try:
            return _start_once()
        except _StartFailed:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


class _StartFailed(RuntimeError):
    """`ray start` exited before its dashboard answered."""


def _start_once() -> RayCluster:
    # A short path: Ray's unix sockets live under the temp dir (at most 107 characters).
    temp_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    storage = Path(tempfile.mkdtemp(prefix="mlform-ray-storage-"))
    names = ("port", "dashboard-port", "ray-client-server-port", "node-manager-port",
             "object-manager-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
             "runtime-env-agent-port", "metrics-export-port")
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           # jobs start with this interpreter's environment on PATH, never a stray python
           "PATH": f"{RAY.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(RAY), "start", "--head", "--block", "--num-cpus=2",
               "--object-store-memory=200000000", "--dashboard-host=127.0.0.1",
               "--node-ip-address=127.0.0.1", "--disable-usage-stats",
               f"--temp-dir={temp_dir}", *(f"--{name}={port}" for name, port in ports.items())]
    log = open(temp_dir / "ray-start.log", "wb")  # noqa: SIM115 (the cluster outlives this call)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    cluster = RayCluster(f"http://127.0.0.1:{ports['dashboard-port']}", storage, temp_dir,
                         process, ports)
    try:
        _wait_for_jobs_api(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for_jobs_api(cluster: RayCluster) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if cluster.process.poll() is not None:
            raise _StartFailed("ray start exited: "
                               + (cluster.temp_dir / "ray-start.log").read_text()[-3000:])
        try:
            if httpx.get(f"{cluster.address}/api/jobs/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the Ray dashboard at {cluster.address} did not answer within "
                       f"{START_TIMEOUT:.0f}s: "
                       + (cluster.temp_dir / "ray-start.log").read_text()[-3000:])


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):  # held open together, so the ports are distinct
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_leftovers(temp_dir: Path) -> None:
    """Kill processes of this cluster that left its process group (Ray's workers may),
    found by the temp dir on their command line: this cluster's, no other."""
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(temp_dir).encode() in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)
