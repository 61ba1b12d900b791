"""What this stack remembers about its state: `.mlform/backend.json`.

Like Terraform's `.terraform/terraform.tfstate`, the record names the backend the
stack last used (its settings, never a secret), so that a changed `backend:` is
noticed instead of silently starting from an empty state. It also keeps the
lineage and the highest serial this stack has seen in that backend, so that a
state replaced by another one (a new lineage) or set back (an old copy restored)
is noticed as well.

The record is this machine's memory, not shared: a stack checked out elsewhere
builds its own on first use.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .local_backend import write_atomically
from .private import private_dir

RECORD_FILE = "backend.json"
RECORD_VERSION = 1
DEFAULT_LOCAL_PATH = ".mlform/state.json"


@dataclass(frozen=True)
class BackendRecord:
    """The backend a stack uses, and the state it last saw there."""

    backend: dict[str, Any]
    """Settings as `backend_settings` returns them."""
    lineage: str | None = None
    serial: int | None = None

    def seen(self, lineage: str, serial: int) -> BackendRecord:
        """The record after reading or writing `lineage` at `serial` (serials never go back)."""
        if lineage == self.lineage and self.serial is not None:
            serial = max(serial, self.serial)
        return replace(self, lineage=lineage, serial=serial)

    def to_json(self) -> dict[str, Any]:
        return {"format_version": RECORD_VERSION, "backend": self.backend,
                "lineage": self.lineage, "serial": self.serial}


def backend_settings(cfg: Any) -> dict[str, Any]:
    """The settings that say where a backend keeps the state, without credentials.

    `cfg` is the spec's `backend:` (or anything with the same attributes).
    """
    if cfg.type == "s3":
        return {"type": "s3", "bucket": cfg.bucket, "key": (cfg.key or "").lstrip("/"),
                "region": cfg.region, "endpoint_url": _without_userinfo(cfg.endpoint_url)}
    if cfg.type == "gcs":
        return {"type": "gcs", "bucket": cfg.bucket, "prefix": (cfg.prefix or "").strip("/"),
                "endpoint_url": _without_userinfo(cfg.endpoint_url)}
    if cfg.type == "azureblob":
        from .azureblob_backend import endpoint

        url = _endpoint_only(cfg.account_url)
        default = endpoint(cfg.storage_account, None)
        return {"type": "azureblob", "storage_account": cfg.storage_account,
                "container": cfg.container, "key": (cfg.key or "").lstrip("/"),
                "account_url": None if (url or "").lower() == default else url}
    return {"type": "local", "path": cfg.path or DEFAULT_LOCAL_PATH}


def same_backend(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when both settings point at the same state (the region alone does not move it)."""
    if a.get("type") != b.get("type"):
        return False
    if a.get("type") == "local":
        return os.path.normpath(a.get("path") or DEFAULT_LOCAL_PATH) == \
            os.path.normpath(b.get("path") or DEFAULT_LOCAL_PATH)
    return all(a.get(k) == b.get(k) for k in ("bucket", "key", "prefix", "endpoint_url",
                                              "storage_account", "container", "account_url"))


def describe_settings(settings: dict[str, Any]) -> str:
    """The backend as the backends describe themselves in messages."""
    if settings.get("type") == "s3":
        return f"s3 state 's3://{settings.get('bucket')}/{settings.get('key')}'"
    if settings.get("type") == "gcs":
        from .gcs_backend import object_name

        return f"gcs state 'gs://{settings.get('bucket')}/{object_name(settings.get('prefix'))}'"
    if settings.get("type") == "azureblob":
        from .azureblob_backend import blob_url

        return "azureblob state '{}'".format(blob_url(
            settings.get("storage_account") or "", settings.get("container") or "",
            settings.get("key") or "", settings.get("account_url")))
    return f"local state '{settings.get('path') or DEFAULT_LOCAL_PATH}'"


class RecordStore:
    """Reads and writes the record of one stack directory."""

    def __init__(self, stack_dir: Path):
        self.dir = Path(stack_dir) / ".mlform"
        self.path = self.dir / RECORD_FILE

    def load(self) -> BackendRecord | None:
        """The record; None when there is none (or it is unreadable: it is only a memory)."""
        try:
            doc = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("backend"), dict):
            return None
        lineage, serial = doc.get("lineage"), doc.get("serial")
        return BackendRecord(
            backend=doc["backend"],
            lineage=lineage if isinstance(lineage, str) else None,
            serial=serial if isinstance(serial, int) and not isinstance(serial, bool)
            else None)

    def save(self, record: BackendRecord) -> None:
        private_dir(self.dir)
        data = json.dumps(record.to_json(), indent=2, sort_keys=True).encode() + b"\n"
        write_atomically(self.path, data)


def _endpoint_only(url: str | None) -> str | None:
    """An account URL without credentials (user:password@, a SAS query) or a trailing '/'."""
    url = _without_userinfo(url)
    return urlunsplit(urlsplit(url)._replace(query="", fragment="")).rstrip("/") if url else url


def _without_userinfo(url: str | None) -> str | None:
    """An endpoint URL with any `user:password@` removed: the record holds no secret."""
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
