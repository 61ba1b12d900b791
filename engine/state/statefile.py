"""The state file format: a `State` to JSON bytes and back, with no I/O.

Every value goes through `to_storable`, so a `Secret` reaches the bytes only as
its salted digest (`{"$sensitive": "hmac-sha256:..."}`) and comes back as a
`StoredSecret`. Reading validates the document and explains what is wrong with
a damaged or too new file.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from ..diagnostics import Diagnostic, Location, MlformError
from ..values import SENSITIVE_KEY, Secret, StoredSecret, from_storable, to_storable
from .model import FORMAT_VERSION, ResourceState, State

RESOURCE_STATUSES = ("ready", "pending", "tainted")

# field -> (accepted types, what to call them in an error)
_STATE_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "format_version": ((int,), "an integer"),
    "lineage": ((str,), "a string"),
    "serial": ((int,), "an integer"),
    "stack": ((str,), "a string"),
    "salt": ((str,), "a string"),
    "resources": ((dict,), "an object"),
    "outputs": ((dict,), "an object"),
}
_RESOURCE_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "type": ((str,), "a string"),
    "provider": ((str,), "a string"),
    "provider_type": ((str,), "a string"),
    "id": ((str, type(None)), "a string or null"),
    "inputs": ((dict,), "an object"),
    "outputs": ((dict,), "an object"),
    "dependencies": ((list,), "a list"),
    "status": ((str,), "a string"),
    "idempotency_key": ((str, type(None)), "a string or null"),
    "updated_at": ((str,), "a string"),
}


def json_default(value: Any) -> Any:
    """`json.dumps` hook: a secret read back from state is written back as its digest."""
    if isinstance(value, StoredSecret):
        return {SENSITIVE_KEY: value.digest}
    if isinstance(value, Secret):
        raise TypeError("a sensitive value must pass through to_storable before it is stored")
    raise TypeError(f"a value of type {type(value).__name__} cannot be stored as JSON")


def encode(state: State) -> bytes:
    doc = {
        "format_version": state.format_version,
        "lineage": state.lineage,
        "serial": state.serial,
        "stack": state.stack,
        "salt": state.salt,
        "resources": {name: resource_to_json(res, state.salt)
                      for name, res in state.resources.items()},
        "outputs": to_storable(state.outputs, state.salt),
    }
    return _dumps_one_resource_per_line(doc).encode("utf-8")


def _dumps_one_resource_per_line(doc: dict[str, Any]) -> str:
    """Indented at the top, one compact line per resource: readable and diffable, and
    fast (json's indenting encoder is pure Python, 6x slower on a large state)."""
    def compact(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "),
                          default=json_default)

    lines = ["{"]
    keys = sorted(doc)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        if key == "resources" and doc[key]:
            names = sorted(doc[key])
            lines.append('  "resources": {')
            for j, name in enumerate(names):
                sep = "," if j < len(names) - 1 else ""
                lines.append(f"    {compact(name)}: {compact(doc[key][name])}{sep}")
            lines.append(f"  }}{comma}")
        else:
            lines.append(f"  {compact(key)}: {compact(doc[key])}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def resource_to_json(res: ResourceState, salt: str) -> dict[str, Any]:
    """The storable form of one resource; its name is the key it is stored under."""
    doc = {
        "type": res.type,
        "provider": res.provider,
        "provider_type": res.provider_type,
        "id": res.id,
        "inputs": to_storable(res.inputs, salt),
        "outputs": to_storable(res.outputs, salt),
        "dependencies": list(res.dependencies),
        "status": res.status,
        "idempotency_key": res.idempotency_key,
        "updated_at": res.updated_at,
    }
    # Only when there is some: a resource without private data is stored as the
    # previous version stored it, byte for byte.
    if res.private:
        doc["private"] = to_storable(res.private, salt)
    return doc


def resource_from_json(name: str, data: dict[str, Any]) -> ResourceState:
    """Inverse of `resource_to_json`; `data` must have been checked by `resource_problems`."""
    return ResourceState(
        name=name,
        type=data["type"],
        provider=data["provider"],
        provider_type=data["provider_type"],
        id=data["id"],
        inputs=from_storable(data["inputs"]),
        outputs=from_storable(data["outputs"]),
        dependencies=tuple(data["dependencies"]),
        status=data["status"],
        idempotency_key=data["idempotency_key"],
        updated_at=data["updated_at"],
        # absent in the previous format, where a provider's private data sat in outputs
        private=from_storable(data.get("private", {})),
    )


def resource_problems(data: Any, where: str) -> list[str]:
    """What is wrong with one stored resource, each problem prefixed by its dotted path."""
    if not isinstance(data, dict):
        return [f"{where}: must be an object"]
    problems = _field_problems(data, _RESOURCE_FIELDS, where)
    if not isinstance(data.get("private", {}), dict):
        problems.append(f"{where}.private: must be an object")
    deps = data.get("dependencies")
    if isinstance(deps, list) and not all(isinstance(d, str) for d in deps):
        problems.append(f"{where}.dependencies: must be a list of resource names")
    status = data.get("status")
    if isinstance(status, str) and status not in RESOURCE_STATUSES:
        allowed = ", ".join(f"'{s}'" for s in RESOURCE_STATUSES)
        problems.append(f"{where}.status: '{status}' is not one of {allowed}")
    return problems


def decode(data: bytes, source: str, backup: str | None = None) -> State:
    """Parse and check a state file; `source` names it in errors, `backup` is a readable
    copy to suggest when it is damaged (None: there is none, and the help says so)."""
    restore = (f"restore the state before the last write: copy '{backup}' over '{source}'"
               if backup else
               f"there is no backup of it to restore: fix the problem in '{source}' by hand "
               "(it is JSON), or move it aside and adopt each live resource again with "
               "'mlform import NAME ID'")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MlformError.simple(f"state file '{source}' is not UTF-8 text",
                                 detail=f"byte {exc.start}: {exc.reason}", help=restore) from None
    except json.JSONDecodeError as exc:
        raise MlformError(Diagnostic(
            f"state file '{source}' is not valid JSON: {exc.msg.lower()}",
            location=Location(source, exc.lineno, exc.colno), help=restore)) from None
    if not isinstance(doc, dict):
        raise MlformError.simple(f"state file '{source}' must hold a JSON object",
                                 help=restore)
    _check_version(doc, source)
    problems = _field_problems(doc, _STATE_FIELDS, "")
    problems.extend(f"{name}: must be at least {least}, not {doc[name]}"
                    for name, least in (("format_version", 1), ("serial", 0))
                    if _is_int(doc.get(name)) and doc[name] < least)
    if isinstance(doc.get("resources"), dict):
        for name, res in doc["resources"].items():
            problems.extend(resource_problems(res, f"resources.{name}"))
    if problems:
        raise MlformError(*(Diagnostic(f"state file '{source}' is invalid: {p}", help=restore)
                            for p in problems))
    return State(
        lineage=doc["lineage"],
        serial=doc["serial"],
        stack=doc["stack"],
        resources={name: resource_from_json(name, res)
                   for name, res in doc["resources"].items()},
        outputs=from_storable(doc["outputs"]),
        salt=doc["salt"],
        format_version=doc["format_version"],
    )


def _check_version(doc: dict[str, Any], source: str) -> None:
    version = doc.get("format_version")
    if not _is_int(version) or version < 1:
        return  # reported with the other field problems
    if version > FORMAT_VERSION:
        raise MlformError.simple(
            f"state file '{source}' has format version {version}; this mlform reads "
            f"version {FORMAT_VERSION}",
            detail="a newer mlform wrote this state",
            help="upgrade mlform (pip install --upgrade mlform) to read and change it")


def _field_problems(doc: dict[str, Any], fields: dict[str, tuple[tuple[type, ...], str]],
                    where: str) -> list[str]:
    prefix = f"{where}." if where else ""
    problems = []
    for name, (types, described) in fields.items():
        if name not in doc:
            problems.append(f"{prefix}{name}: missing")
        elif not isinstance(doc[name], types) or (int in types and isinstance(doc[name], bool)):
            problems.append(f"{prefix}{name}: must be {described}")
    return problems


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
