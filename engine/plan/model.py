"""Plans as plain data: for each resource, the action, the attribute changes and why.

The reason explains the plan to a person; nothing decides on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    DELETE_CREATE = "delete-then-create"
    CREATE_DELETE = "create-then-delete"
    DELETE = "delete"
    MOVE = "move"
    """The provider changes and the content is carried over (`mlform.engine.moves`):
    copied and verified, not re-created; the old object goes once nothing uses it."""

    @property
    def is_replace(self) -> bool:
        return self in (Action.DELETE_CREATE, Action.CREATE_DELETE)

    @property
    def symbol(self) -> str:
        return {"no-op": " ", "create": "+", "update": "~", "delete-then-create": "-/+",
                "create-then-delete": "+/-", "delete": "-", "move": "->"}[self.value]


@dataclass(frozen=True)
class AttributeDiff:
    path: str
    before: Any
    after: Any
    forces_replacement: bool = False
    reason: str = ""


@dataclass(frozen=True)
class ResourceChange:
    name: str
    type: str
    provider: str
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    """Desired inputs; may hold Unknown and Secret values."""
    attributes: tuple[AttributeDiff, ...] = ()
    reasons: tuple[str, ...] = ()
    """Why this resource changes, in words ("dataset transactions changed: ...")."""
    replace_paths: tuple[str, ...] = ()
    planned_outputs: dict[str, Any] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    moved_from: str = ""
    """For a move: the provider the resource leaves."""
    move_source: str = ""
    """For a move: the state entry its content is exported from (the resource's own, or
    the deposed entry an interrupted move left)."""
    copies: tuple[tuple[str, int], ...] = ()
    """For a move: (path, size) of each file copied."""


@dataclass(frozen=True)
class Plan:
    stack: str
    lineage: str
    serial: int
    spec_digest: str
    changes: tuple[ResourceChange, ...]
    destroy: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    drift: tuple[Any, ...] = ()
    """Findings of the refresh that preceded the plan (changed outside mlform)."""
    targets: tuple[str, ...] = ()
    output_changes: tuple[AttributeDiff, ...] = ()
    """Stack outputs whose value differs from the one in state."""
    notes: tuple[str, ...] = ()
    """Fields the plan sets that their provider ignores on purpose, one line each."""

    def actionable(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.action is not Action.NOOP]

    def has_changes(self) -> bool:
        return bool(self.actionable()) or bool(self.output_changes)

    def counts(self) -> dict[str, int]:
        add = sum(1 for c in self.changes if c.action is Action.CREATE or c.action.is_replace)
        change = sum(1 for c in self.changes if c.action is Action.UPDATE)
        destroy = sum(1 for c in self.changes if c.action is Action.DELETE or c.action.is_replace)
        move = sum(1 for c in self.changes if c.action is Action.MOVE)
        return {"add": add, "change": change, "destroy": destroy, "move": move}

    def change_for(self, name: str) -> ResourceChange | None:
        for c in self.changes:
            if c.name == name:
                return c
        return None
