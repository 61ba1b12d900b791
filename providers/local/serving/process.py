"""The server process: starting it detached, recognising it later, stopping it.

`server.json` in the endpoint's directory records the process:

    {"pid": 1234, "port": 8731, "started": 1718000000.1, "create_time": 1718000000.05,
     "config_digest": "sha256:..."}

`control.token` beside it holds the secret the server's control routes ask for
(`/-/config`, `/-/stats`), so that another user of the machine cannot change
what an endpoint serves; the file is readable by its owner only.

`config_digest` identifies the config the server started with (it may have
changed since through the control route, which is what to ask for the live one).
The provider binds the listening socket itself and hands it to the process, so
the port is known and taken before the process starts, and the record is
written as soon as the process exists.

A server is recognised by its command line, `python -m MODULE DIR FD`, which names
the endpoint's directory (`running`): the recorded one is the server whose pid the
record holds (`recorded`), and a pid reused by another program cannot carry that
command line. `create_time` is kept in the record for reading, not to recognise the
server: psutil computes a process's create time from the boot time as the wall clock
has it now, so a clock step (NTP, a VM's time sync) would make a live server read as
gone, and the destroy that should stop it would leave it running without its files.

An apply killed after starting a server and before writing its record leaves a
server nothing records. `strays` finds it by its command line, and the next apply
or destroy stops it; a destroy stops every server of the endpoint (`stop_all`).
A gateway's proxy runs under the same supervision, with its own MODULE.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

SERVER_FILE = "server.json"
TOKEN_FILE = "control.token"
"""The secret a server's control routes ask for (readable by its owner only); a new
one for each server started."""
SERVER_MODULE = "mlform.providers.local.serving.server"
LOG_FILE = "server.log"


@dataclass(frozen=True)
class ServerRecord:
    pid: int
    port: int
    started: float
    create_time: float
    config_digest: str


def record_path(directory: Path) -> Path:
    return Path(directory) / SERVER_FILE


def read_record(directory: Path) -> ServerRecord | None:
    try:
        return ServerRecord(**json.loads(record_path(directory).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def write_record(directory: Path, record: ServerRecord) -> None:
    path = record_path(directory)
    tmp = path.with_name(f"{SERVER_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2))
    tmp.replace(path)


def write_token(directory: Path) -> str:
    """A new control token in `directory`, created readable by its owner only."""
    token = secrets.token_urlsafe(32)
    path = Path(directory) / TOKEN_FILE
    tmp = path.with_name(f"{TOKEN_FILE}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    tmp.replace(path)
    return token


def read_token(directory: Path) -> str:
    """The control token of the server in `directory`; empty when it has none."""
    try:
        return (Path(directory) / TOKEN_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


def log_tail(directory: Path, lines: int = 20) -> str:
    try:
        text = (Path(directory) / LOG_FILE).read_text(errors="replace")
    except FileNotFoundError:
        return "(server.log is empty)"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(tail) if tail else "(server.log is empty)"


def spawn(directory: Path, port: int, config_digest: str,
          module: str = SERVER_MODULE) -> ServerRecord:
    """Start the server for the endpoint whose files are in `directory` on
    127.0.0.1:`port` (0: a free one), detached (its own session, so it outlives the
    command that started it). Raises OSError when the port cannot be bound. `module`
    is the server to run (a gateway's proxy runs under the same supervision)."""
    directory = Path(directory).resolve()
    write_token(directory)
    with listen(port) as sock, (directory / LOG_FILE).open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, str(directory), str(sock.fileno())],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, pass_fds=(sock.fileno(),), cwd=directory)
        port = sock.getsockname()[1]
    record = ServerRecord(pid=proc.pid, port=port, started=time.time(),
                          create_time=psutil.Process(proc.pid).create_time(),
                          config_digest=config_digest)
    write_record(directory, record)
    return record


def _command(directory: Path, module: str) -> list[str]:
    """What a process of `directory`'s `module` has after its interpreter (`spawn`)."""
    return ["-m", module, str(Path(directory).resolve())]


def _alive(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return proc.status() != psutil.STATUS_ZOMBIE
    return False


def running(directory: Path, module: str = SERVER_MODULE) -> list[psutil.Process]:
    """Every live `module` process started for the files in `directory` (which need
    not exist any more), recorded or not."""
    command = _command(directory, module)
    return [proc for proc in psutil.process_iter(["cmdline"])
            if (proc.info["cmdline"] or [])[1:4] == command and _alive(proc)]


def recorded(directory: Path, record: ServerRecord | None,
             module: str = SERVER_MODULE) -> psutil.Process | None:
    """The process the record names, if it runs as `directory`'s `module`."""
    if record is None:
        return None
    try:
        proc = psutil.Process(record.pid)
        if proc.cmdline()[1:4] == _command(directory, module) and _alive(proc):
            return proc
    except psutil.Error:
        pass
    return None


def strays(directory: Path, record: ServerRecord | None,
           module: str = SERVER_MODULE) -> list[psutil.Process]:
    """Server processes for the endpoint in `directory` other than the recorded one."""
    return [p for p in running(directory, module) if record is None or p.pid != record.pid]


def stop_strays(directory: Path, record: ServerRecord | None,
                timeout: float = 10.0, module: str = SERVER_MODULE) -> list[int]:
    """Stop the servers `strays` finds (each with its process group: SIGTERM, then
    SIGKILL after `timeout`); returns their pids."""
    stopped = []
    for proc in strays(directory, record, module):
        with contextlib.suppress(psutil.Error):
            _terminate(proc, timeout)
            stopped.append(proc.pid)
    return stopped


def stop_all(directory: Path, timeout: float = 10.0, module: str = SERVER_MODULE,
             what: str = "server") -> list[int]:
    """Stop every `module` process of `directory`, recorded or not (as `stop_strays`
    does); the pids stopped. Raises TimeoutError naming the `what` still running after
    that."""
    stopped = stop_strays(directory, None, timeout, module)
    left = running(directory, module)
    if left:
        raise TimeoutError(f"the {what} (pid {', '.join(str(p.pid) for p in left)}) still "
                           f"runs {timeout:g}s after SIGKILL")
    return stopped


def stop(directory: Path, record: ServerRecord | None, timeout: float = 10.0) -> list[int]:
    """Stop every server of the endpoint in `directory`; returns the pids stopped once
    they are gone and, when the recorded one was among them, its port is closed
    (TimeoutError otherwise). A port a dead server left may be another program's now."""
    stopped = stop_all(directory, timeout)
    if record is not None and record.pid in stopped:
        wait_port_closed(record.port, timeout)
    return stopped


def _terminate(proc: psutil.Process, timeout: float) -> None:
    """SIGTERM (the server finishes in-flight requests and flushes its logs), then
    SIGKILL after `timeout`; returns once the process is gone."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # the server leads its own session: its group holds it and anything it started
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def listen(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` (0: any free port); OSError when taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # a restart on the same port must not wait for the old connections' TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def wait_port_closed(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while port_in_use(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} still accepts connections {timeout:g}s after "
                               "the server stopped")
        time.sleep(0.05)
