"""State as plain data: what mlform manages and what it last knew about each resource.

No file or network I/O here: `statefile` reads and writes the format, `store`
keeps it (locking, atomic replace, journal).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ResourceState:
    name: str
    type: str
    provider: str
    id: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: tuple[str, ...] = ()
    status: str = "ready"
    """`ready`; `pending` while a create may have happened (an idempotency key is set);
    `tainted` when a create or update failed part-way and the next apply must replace it."""
    idempotency_key: str | None = None
    provider_type: str = ""
    updated_at: str = ""

    def with_(self, **changes: Any) -> ResourceState:
        return replace(self, **changes)


@dataclass(frozen=True)
class State:
    lineage: str
    serial: int
    stack: str
    resources: dict[str, ResourceState] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    salt: str = ""
    """Per-lineage salt for digests of sensitive values."""
    format_version: int = FORMAT_VERSION

    @classmethod
    def new(cls, stack: str) -> State:
        return cls(lineage=str(uuid.uuid4()), serial=0, stack=stack,
                   salt=uuid.uuid4().hex[:16])

    def with_resource(self, res: ResourceState) -> State:
        return replace(self, resources={**self.resources, res.name: res})

    def without(self, name: str) -> State:
        return replace(self, resources={k: v for k, v in self.resources.items() if k != name})

    def next_serial(self, **changes: Any) -> State:
        return replace(self, serial=self.serial + 1, **changes)
