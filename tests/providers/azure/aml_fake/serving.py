"""Scoring hosts: one local process per online deployment (scoring_host.py), started from the
deployment's code asset, scoring script and model fetched from Azurite, ready once its `init()`
returned and it answers on its port; and the call the scoring frontend makes to one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HOST_SCRIPT = Path(__file__).with_name("scoring_host.py")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HostFailed(Exception):
    """The host exited (init() crashed) or never became ready; the message is its stderr tail."""


@dataclass
class Host:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    def logs(self, tail: int | None = None) -> str:
        text = "".join((self.directory / f).read_text(errors="replace")
                       for f in ("stdout.log", "stderr.log") if (self.directory / f).exists())
        if tail is not None:
            text = "\n".join(text.splitlines()[-tail:])
        return text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def score(self, body: bytes, timeout: float) -> tuple[int, bytes]:
        """POST the request body to the host's /score; (status, body). Raises TimeoutError."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/score", data=body,
                                         method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except TimeoutError as e:
            raise TimeoutError(str(e)) from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise TimeoutError(str(e)) from e
            return 502, str(e.reason).encode()


def start_host(directory: Path, code_dir: Path, script: str, model_dir: Path,
               env: dict[str, str], timeout: float) -> Host:
    """Start a host and wait until it is ready; raise HostFailed with its stderr tail if it
    exits or is not ready within `timeout` seconds."""
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    stdout = (directory / "stdout.log").open("wb")
    stderr = (directory / "stderr.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(HOST_SCRIPT), str(code_dir), script, str(port)],
        env={**os.environ, **env, "AZUREML_MODEL_DIR": str(model_dir)},
        stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    stdout.close()
    stderr.close()
    host = Host(process, port, directory)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HostFailed(host.logs()[-3000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                if resp.status == 200:
                    return host
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    host.stop()
    raise HostFailed(f"the scoring host was not ready within {timeout:.0f}s\n{host.logs()[-3000:]}")
