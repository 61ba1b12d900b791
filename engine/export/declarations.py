"""What a provider says about its live resources for an export, as plain data.

A provider that can be exported to Pulumi implements `PulumiExporter`: given its
entries in state, it answers a `PulumiExport` naming its Pulumi package, the explicit
provider resource to create, one `Declaration` per live cloud resource (the SDK class,
the inputs that match the live resource, the id Pulumi adopts it by) and a note for
each thing Pulumi cannot express. The engine renders it (`engine/export/pulumi.py`);
nothing here imports Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..state.model import ResourceState


@dataclass(frozen=True)
class Ref:
    """Another declaration's output, e.g. an endpoint's config name: rendered as a
    reference, so Pulumi orders the two and passes the value along."""

    declaration: str
    attribute: str


@dataclass(frozen=True)
class FileAsset:
    """A file under the stack directory uploaded as an object's content."""

    path: str


@dataclass(frozen=True)
class Declaration:
    """One cloud resource as Pulumi declares it.

    `cls` is the SDK class under the package (`sagemaker.Model`), `args` its keyword
    arguments in the SDK's snake_case (nested inputs as dicts), `import_id` the id
    Pulumi's `import_` option adopts the live resource by, and `source` the mlform
    resource it belongs to."""

    name: str
    cls: str
    args: Mapping[str, Any]
    import_id: str
    source: str
    depends_on: tuple[str, ...] = ()
    ignore_changes: tuple[str, ...] = ()
    """Inputs the platform cannot read back (an object's source file): without
    `ignore_changes`, Pulumi would see them differ on import and refuse it."""


@dataclass(frozen=True)
class PulumiExport:
    """One mlform provider's share of the program."""

    module: str
    """The Python module of the Pulumi package: `pulumi_aws`."""
    alias: str
    """How the program names it: `aws`."""
    requirement: str
    """Its line in requirements.txt, e.g. `pulumi-aws>=7.51.1,<8`."""
    provider_args: Mapping[str, Any]
    """The explicit Pulumi provider's arguments (region, project)."""
    declarations: Sequence[Declaration] = ()
    notes: Sequence[str] = field(default_factory=tuple)
    """What the stack holds that Pulumi cannot express, one sentence each."""


@runtime_checkable
class PulumiExporter(Protocol):
    """A provider whose resources can be exported as a Pulumi program."""

    def pulumi_resources(self, entries: list[ResourceState]) -> PulumiExport: ...
