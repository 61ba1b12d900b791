"""Container stand-ins: the fake runs a container spec's `command` + `args` as a local
subprocess instead of pulling `imageUri`.

`python`/`python3` as argv[0] becomes this interpreter (`sys.executable`), so the container's
code runs with the test venv's packages. The process gets a clean environment (PATH, LANG, a
HOME in its own working directory) plus what the real service sets, and
`STORAGE_EMULATOR_HOST` so google-cloud-storage inside it reaches the GCS emulator.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ApiError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def argv_of(spec: dict[str, Any], what: str) -> list[str]:
    """The argv a container spec runs; containers without a command (prebuilt images, python
    packages) cannot be run by the fake and are refused with a message saying so."""
    argv = [str(a) for a in (spec.get("command") or [])] + [str(a) for a in (spec.get("args") or [])]
    if not spec.get("command"):
        raise ApiError("INVALID_ARGUMENT",
                       f"the Vertex fake runs only containers with a command; {what} "
                       f"(image {spec.get('imageUri', '?')!r}) has none")
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def env_of(spec: dict[str, Any], storage_url: str, cwd: Path, extra: dict[str, str]) -> dict[str, str]:
    """The process environment: a clean base, the service's variables, then the spec's `env`."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    env.update(HOME=str(cwd), PYTHONUNBUFFERED="1", STORAGE_EMULATOR_HOST=storage_url)
    env.update(extra)
    env.update({e["name"]: str(e.get("value", "")) for e in spec.get("env") or []})
    return env


def tail(path: Path, lines: int = 20, limit: int = 2000) -> str:
    """The last lines of a log file (what an error message quotes)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])[-limit:]


@dataclass
class Process:
    """A started container stand-in with its logs in `directory` (stdout.log, stderr.log)."""

    popen: subprocess.Popen[bytes]
    directory: Path

    @classmethod
    def start(cls, argv: list[str], env: dict[str, str], directory: Path) -> Process:
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "stdout.log").open("wb") as out, (directory / "stderr.log").open("wb") as err:
            popen = subprocess.Popen(argv, cwd=directory, env=env, stdout=out, stderr=err,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return cls(popen, directory)

    def log(self) -> str:
        parts = []
        for name in ("stdout.log", "stderr.log"):
            path = self.directory / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def stderr_tail(self) -> str:
        return tail(self.directory / "stderr.log")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL after `grace` seconds."""
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        except ProcessLookupError:
            pass


def wait_healthy(process: Process, port: int, route: str, timeout: float) -> str | None:
    """Poll `GET route` until it answers 200; None when healthy, else why not (the process
    exited, or the deadline passed) with its stderr tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.popen.poll()
        if code is not None:
            return f"the serving container exited with status {code}:\n{process.stderr_tail()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=2) as resp:
                if resp.status == 200:
                    return None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    process.stop(grace=1)
    return (f"the serving container did not answer 200 on {route} within {timeout:.0f}s:\n"
            f"{process.stderr_tail()}")
