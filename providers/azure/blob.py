"""The few Azure Blob operations the provider needs, each retried and explained like every
other call (clients.retrying): blobs written once at content-addressed names, read,
listed under a prefix and deleted by prefix. Ownership tags ride on each blob as metadata.
"""

from __future__ import annotations

from typing import Any

from .clients import Clients, retrying
from .errors import is_not_found
from .naming import blob_metadata


class Blob:
    def __init__(self, clients: Clients, resource: str = ""):
        self.clients = clients
        self.resource = resource

    def _retry(self, fn: Any) -> Any:
        cfg = self.clients.cfg
        return retrying(fn, cfg.max_attempts, "blob", self.resource,
                        f"{cfg.blob_url}/{cfg.container}")

    def exists(self, name: str) -> bool:
        return bool(self._retry(lambda: self.clients.container.get_blob_client(name).exists()))

    def put(self, name: str, data: bytes, tags: dict[str, str] | None = None,
            content_type: str = "application/octet-stream") -> None:
        from azure.storage.blob import ContentSettings

        self._retry(lambda: self.clients.container.upload_blob(
            name, data, overwrite=True, metadata=blob_metadata(tags or {}),
            content_settings=ContentSettings(content_type=content_type)))

    def put_once(self, name: str, data: bytes, tags: dict[str, str]) -> bool:
        """Write `data` at `name` unless a blob is there (names are content-addressed);
        True when written."""
        if self.exists(name):
            return False
        self.put(name, data, tags)
        return True

    def upload_file(self, name: str, path: str, tags: dict[str, str]) -> None:
        def upload() -> None:
            with open(path, "rb") as f:
                self.clients.container.upload_blob(name, f, overwrite=True,
                                                   metadata=blob_metadata(tags))

        self._retry(upload)

    def get(self, name: str) -> bytes | None:
        """The blob's bytes, or None when it does not exist."""
        try:
            return self._retry(
                lambda: self.clients.container.download_blob(name).readall())
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def list(self, prefix: str) -> list[Any]:
        """The blobs under `prefix` (name, last_modified, size, metadata)."""
        return self._retry(lambda: list(self.clients.container.list_blobs(
            name_starts_with=prefix, include=["metadata"])))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under `prefix`; how many went."""
        gone = 0
        for found in self.list(prefix):
            try:
                self._retry(lambda n=found.name: self.clients.container.delete_blob(n))
                gone += 1
            except Exception as exc:
                if not is_not_found(exc):  # deleted meanwhile: fine
                    raise
        return gone
