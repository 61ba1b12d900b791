"""The plan document: JSON for machines, for `--out` files, and the source of every view.

A saved plan is bound to the state's lineage and serial, the spec's digest and a
salted digest of the variables, so `apply PLANFILE` can refuse a stale one.
Sensitive values appear only as salted digests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..diagnostics import MlformError
from ..values import from_storable, to_storable
from .migration import section as migration_section
from .model import Action, AttributeDiff, Plan, ResourceChange

FORMAT_VERSION = 1


def variables_digest(variables: dict[str, Any], salt: str) -> str:
    blob = json.dumps(to_storable(variables, salt), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def to_document(plan: Plan, salt: str, variables_digest: str = "") -> dict:
    def s(v):
        return to_storable(v, salt)

    return {
        "format_version": FORMAT_VERSION,
        "stack": plan.stack,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "spec_digest": plan.spec_digest,
        "variables_digest": variables_digest,
        # Not secret (every digest carries it); lets the first apply of a plan made before
        # any state existed start the state with this plan's lineage and salt.
        "salt": salt,
        "destroy": plan.destroy,
        "targets": list(plan.targets),
        "summary": plan.counts(),
        "changes": [{
            "name": c.name, "type": c.type, "provider": c.provider, "action": c.action.value,
            "reasons": list(c.reasons), "replace_paths": list(c.replace_paths),
            "attributes": [{"path": a.path, "before": s(a.before), "after": s(a.after),
                            "forces_replacement": a.forces_replacement, "reason": a.reason}
                           for a in c.attributes],
            "before": s(c.before), "after": s(c.after),
            "planned_outputs": s(c.planned_outputs),
            "dependencies": list(c.dependencies),
            **({"moved_from": c.moved_from, "move_source": c.move_source,
                "copies": [{"path": p, "size": n} for p, n in c.copies],
                "copy_size": sum(n for _, n in c.copies)}
               if c.action is Action.MOVE else {}),
        } for c in plan.changes],
        "outputs": s(plan.outputs),
        "output_changes": [{"name": a.path, "before": s(a.before), "after": s(a.after)}
                           for a in plan.output_changes],
        "drift": [{"name": f.name, "type": f.type, "kind": f.kind, "detail": f.detail,
                   "attributes": [{"path": a.path, "before": s(a.before), "after": s(a.after)}
                                  for a in f.attributes]} for f in plan.drift],
        "notes": list(plan.notes),
        **({"migration": s(migration)} if (migration := migration_section(plan)) else {}),
    }


def from_document(doc: dict) -> Plan:
    changes = tuple(ResourceChange(
        name=c["name"], type=c["type"], provider=c["provider"], action=Action(c["action"]),
        before=from_storable(c["before"]), after=from_storable(c["after"]),
        attributes=tuple(AttributeDiff(a["path"], from_storable(a["before"]),
                                       from_storable(a["after"]), a["forces_replacement"],
                                       a.get("reason", "")) for a in c["attributes"]),
        reasons=tuple(c["reasons"]), replace_paths=tuple(c["replace_paths"]),
        planned_outputs=from_storable(c["planned_outputs"]),
        dependencies=tuple(c["dependencies"]), moved_from=c.get("moved_from", ""),
        move_source=c.get("move_source", ""),
        copies=tuple((f["path"], f["size"]) for f in c.get("copies", ())))
        for c in doc["changes"])
    return Plan(stack=doc["stack"], lineage=doc["lineage"], serial=doc["serial"],
                spec_digest=doc["spec_digest"], changes=changes, destroy=doc["destroy"],
                targets=tuple(doc["targets"]), outputs=from_storable(doc["outputs"]),
                output_changes=tuple(AttributeDiff(o["name"], from_storable(o["before"]),
                                                   from_storable(o["after"]))
                                     for o in doc.get("output_changes", [])),
                notes=tuple(doc.get("notes", ())))


def encode(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n").encode()


def digest(doc: dict) -> str:
    return "sha256:" + hashlib.sha256(encode(doc)).hexdigest()


def save(path: Path, doc: dict) -> None:
    import os

    data = encode(doc)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise MlformError.simple(f"plan file not found: {path}",
                                 help="create one with 'mlform plan --out FILE'") from None
    except (OSError, ValueError) as exc:
        raise MlformError.simple(f"cannot read plan file {path}: {exc}",
                                 help="create a new one with 'mlform plan --out FILE'") from None
    if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION or \
            "changes" not in doc:
        raise MlformError.simple(f"{path} is not an mlform plan file (or from another version)",
                                 help="create a new one with 'mlform plan --out FILE'")
    return doc


def check_current(doc: dict, path: Path, lineage: str, serial: int, spec_digest: str,
                  vars_digest: str) -> None:
    """Refuse a plan made against another state or spec."""
    again = f"make a new plan: mlform plan --out {path}"
    if doc["lineage"] != lineage:
        raise MlformError.simple(
            f"plan file {path} was made for another state (lineage {doc['lineage']}, "
            f"this state is {lineage})", help=again)
    if doc["serial"] != serial:
        raise MlformError.simple(
            f"plan file {path} is stale: it was made against state serial {doc['serial']}, "
            f"and the state is now at serial {serial}",
            help=f"the state changed since the plan was made; {again}")
    if doc["spec_digest"] != spec_digest:
        raise MlformError.simple(f"plan file {path} is stale: the stack's spec files changed "
                                 "since it was made", help=again)
    if doc.get("variables_digest") and doc["variables_digest"] != vars_digest:
        raise MlformError.simple(f"plan file {path} was made with other variable values",
                                 help="pass the same --var/--var-file values as for the plan, "
                                      f"or {again}")
