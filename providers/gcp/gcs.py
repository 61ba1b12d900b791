"""The few GCS operations the provider needs, each retried and explained like every
other call (clients.retrying): objects are written once at content-addressed keys, read,
listed under a prefix and deleted by prefix. Ownership labels ride on each object as
custom metadata."""

from __future__ import annotations

from typing import Any

from .clients import Clients, retrying
from .errors import is_not_found


class Gcs:
    def __init__(self, clients: Clients, resource: str = ""):
        self.clients = clients
        self.resource = resource

    def _retry(self, fn: Any, method: str) -> Any:
        return retrying(fn, self.clients.cfg.max_attempts, method, self.resource)

    def _blob(self, bucket: str, key: str) -> Any:
        return self.clients.storage.bucket(bucket).blob(key)

    def exists(self, bucket: str, key: str) -> bool:
        return bool(self._retry(lambda: self._blob(bucket, key).exists(), "exists"))

    def metadata(self, bucket: str, key: str) -> dict[str, str] | None:
        """The object's custom metadata, or None when it does not exist."""
        blob = self.clients.storage.bucket(bucket).get_blob
        found = self._retry(lambda: blob(key), "download")
        return None if found is None else dict(found.metadata or {})

    def put(self, bucket: str, key: str, data: bytes, labels: dict[str, str] | None = None,
            content_type: str = "application/octet-stream") -> None:
        def upload() -> None:
            blob = self._blob(bucket, key)
            blob.metadata = dict(labels or {})
            blob.upload_from_string(data, content_type=content_type)

        self._retry(upload, "upload")

    def put_once(self, bucket: str, key: str, data: bytes, labels: dict[str, str]) -> bool:
        """Write `data` at `key` unless an object is there (keys are content-addressed);
        True when written."""
        if self.exists(bucket, key):
            return False
        self.put(bucket, key, data, labels)
        return True

    def upload_file(self, bucket: str, key: str, path: str, labels: dict[str, str]) -> None:
        def upload() -> None:
            blob = self._blob(bucket, key)
            blob.metadata = dict(labels)
            blob.upload_from_filename(path)

        self._retry(upload, "upload")

    def get(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        try:
            return self._retry(lambda: self._blob(bucket, key).download_as_bytes(), "download")
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def list(self, bucket: str, prefix: str) -> list[Any]:
        """The blobs under `prefix` (name, updated, size, metadata)."""
        return self._retry(lambda: list(self.clients.storage.list_blobs(bucket, prefix=prefix)),
                           "list_blobs")

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under `prefix`; how many went."""
        gone = 0
        for blob in self.list(bucket, prefix):
            try:
                self._retry(blob.delete, "delete")
                gone += 1
            except Exception as exc:
                if not is_not_found(exc):  # deleted meanwhile: fine
                    raise
        return gone
