"""State as plain data: what mlform manages and what it last knew about each resource.

No file or network I/O here: `statefile` reads and writes the format, `store`
keeps it (locking, atomic replace, journal).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
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
    private: dict[str, Any] = field(default_factory=dict)
    """What the provider returned beyond the outputs it declares (a server's pid, a
    SageMaker model name), like Terraform's per-resource private blob: handed back to
    the provider on every call, out of reach of references and stack outputs."""

    def with_(self, **changes: Any) -> ResourceState:
        return replace(self, **changes)

    @property
    def provider_outputs(self) -> dict[str, Any]:
        """The merged view a provider gets back: its private data and the outputs, as
        it returned them (a state of the previous format holds both in `outputs`)."""
        return {**self.private, **self.outputs}

    def with_provider_outputs(self, returned: Mapping[str, Any],
                              portable: Collection[str] | None, **changes: Any) -> ResourceState:
        """This resource recording what its provider `returned`: the `portable` outputs
        (`mlform.engine.capabilities.portable`) as `outputs`, the rest as `private`.
        None: the provider declares nothing for the type; all of it stays in `outputs`."""
        outputs, private = split_outputs(returned, portable)
        return replace(self, outputs=outputs, private=private, **changes)


def split_outputs(returned: Mapping[str, Any],
                  portable: Collection[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(portable, private) parts of what a provider returned; see `with_provider_outputs`."""
    if portable is None:
        return dict(returned), {}
    return ({k: v for k, v in returned.items() if k in portable},
            {k: v for k, v in returned.items() if k not in portable})


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
