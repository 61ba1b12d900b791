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
written as soon as the process exists. `create_time` tells the server apart from
an unrelated process that was given the same pid after the server died.

An apply killed after starting a server and before writing its record leaves a
server nothing records. Its command line names the endpoint's directory, so
`strays` finds it, and the next apply or destroy stops it.
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


def process_of(record: ServerRecord) -> psutil.Process | None:
    """The server's process if it still runs (not a zombie, not a reused pid)."""
    try:
        proc = psutil.Process(record.pid)
        if abs(proc.create_time() - record.create_time) > 0.01:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


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


def strays(directory: Path, recorded: ServerRecord | None,
           module: str = SERVER_MODULE) -> list[psutil.Process]:
    """Server processes for the endpoint in `directory` other than the recorded one."""
    target = str(Path(directory).resolve())
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline[1:4] != ["-m", module, target]:
            continue
        if recorded is not None and proc.pid == recorded.pid:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def stop_strays(directory: Path, recorded: ServerRecord | None,
                timeout: float = 10.0, module: str = SERVER_MODULE) -> list[int]:
    """Stop the servers `strays` finds (as `stop` does); returns their pids."""
    stopped = []
    for proc in strays(directory, recorded, module):
        with contextlib.suppress(psutil.Error):
            _terminate(proc, timeout)
            stopped.append(proc.pid)
    return stopped


def stop(record: ServerRecord, timeout: float = 10.0) -> None:
    """Stop the recorded server; returns once the process is gone and its port closed."""
    proc = process_of(record)
    if proc is not None:
        _terminate(proc, timeout)
    wait_port_closed(record.port, timeout)


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
