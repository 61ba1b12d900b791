"""Request and response types of the move verbs (`Provider.export`, `Provider.import_`).

    export   the resource's content as a portable bundle in a local staging directory
             (`mlform.ml.bundle`); with no staging directory, only the list of files
             and their sizes, for the plan. Never changes anything.
    import_  create the resource on this provider from a bundle; idempotent under its
             idempotency key; verifies every file's digest after the copy and fails
             clearly when one differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..provider import ResourceRef


@dataclass(frozen=True)
class ExportRequest:
    resource: ResourceRef
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    """The recorded outputs, the provider's private data included."""
    staging: Path | None = None
    """Where to write the bundle; None: only list what it would hold."""


@dataclass(frozen=True)
class ExportResponse:
    files: tuple[tuple[str, int], ...] = ()
    """(path, size) of every file the bundle holds or would hold."""
    bundle: Path | None = None
    """The staging directory, once written."""
    error: str | None = None

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)


@dataclass(frozen=True)
class ImportRequest:
    resource: ResourceRef
    inputs: dict[str, Any]
    """The desired inputs on this provider (references resolved to moved upstreams)."""
    bundle: Path
    idempotency_key: str
