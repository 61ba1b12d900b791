"""A real Azure Blob emulator on loopback for the azure tests: Azurite's `azurite-blob`
(npm `azurite@3.35.0`), run as a subprocess, one per test session.

The binary is looked up on PATH first, then at `build/azurite/node_modules/.bin/` (where CI
installs it with `npm install --prefix build/azurite azurite@3.35.0`). Storage is in memory;
nothing here reads or sets `AZURE_STORAGE_CONNECTION_STRING`: clients are bound to the emulator
explicitly through `.connection_string` or `.url` + `.account_key`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
# Azurite's well-known development account (documented, public; not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


def azurite_binary() -> Path | None:
    """`azurite-blob` on PATH, else under build/azurite/node_modules/.bin/, else None."""
    found = shutil.which("azurite-blob")
    if found:
        return Path(found)
    local = REPO_ROOT / "build" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    return local if local.exists() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Azurite:
    """A running `azurite-blob` on 127.0.0.1 (account devstoreaccount1)."""

    url: str
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path = field(repr=False)
    account_name: str = ACCOUNT_NAME
    account_key: str = ACCOUNT_KEY

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
                f"AccountKey={self.account_key};BlobEndpoint={self.url};")

    def client(self) -> Any:
        """An `azure.storage.blob.BlobServiceClient` bound to this emulator."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name: str) -> Any:
        """Create container `name` (if absent) and return its `ContainerClient`."""
        container = self.client().get_container_client(name)
        if not container.exists():
            container.create_container()
        return container

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_azurite(root: Path, *, timeout: float = 30.0) -> Azurite:
    """Start `azurite-blob` in memory on a free loopback port (its log under `root`) and
    return once the blob endpoint answers. Raises RuntimeError when it cannot start."""
    binary = azurite_binary()
    if binary is None:
        raise RuntimeError("azurite-blob is not installed "
                           "(npm install --prefix build/azurite azurite@3.35.0)")
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log_path = root / "azurite.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port),
             "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root)
    azurite = Azurite(url=f"http://127.0.0.1:{port}/{ACCOUNT_NAME}", port=port,
                      process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"azurite-blob exited with {process.returncode}: {azurite.log()}")
        try:
            # Any HTTP answer (an unauthenticated list is refused with 403) means it listens.
            urllib.request.urlopen(f"{azurite.url}?comp=list", timeout=2).close()
            return azurite
        except urllib.error.HTTPError:
            return azurite
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    azurite.stop()
    raise RuntimeError(f"azurite-blob did not answer at {azurite.url} within {timeout:.0f}s")
