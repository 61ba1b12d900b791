"""Turn pydantic validation errors into diagnostics at the user's file:line:col."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ..diagnostics import Diagnostic, did_you_mean
from .source import Positions

_TYPE_WORDS = {
    "float": "a number", "int": "an integer", "bool": "true or false", "str": "a string",
    "dict": "a mapping", "list": "a list",
}


def validate(model: type[BaseModel], data: Any, positions: Positions,
             prefix: tuple = ()) -> tuple[BaseModel | None, list[Diagnostic]]:
    """Validate `data` against `model`; on failure, one diagnostic per faulty value."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, diagnostics_from(exc, data, positions, prefix, model)


def diagnostics_from(exc: ValidationError, data: Any, positions: Positions, prefix: tuple,
                     model: type[BaseModel]) -> list[Diagnostic]:
    grouped: dict[tuple, list[ErrorDetails]] = {}
    for err in exc.errors(include_url=False):
        path, is_key = _data_path(data, err["loc"], err["type"])
        grouped.setdefault((path, is_key), []).append(err)
    out = []
    for (path, is_key), errs in grouped.items():
        out.append(_diagnostic(path, is_key, errs, data, positions, prefix, model))
    return out


def _data_path(data: Any, loc: tuple, kind: str) -> tuple[tuple, bool]:
    """Drop the segments pydantic adds for union members and tags."""
    path: list = []
    cur = data
    for i, seg in enumerate(loc):
        last = i == len(loc) - 1
        if _holds(cur, seg):
            path.append(seg)
            cur = cur[seg]
        elif last and kind == "missing" and isinstance(cur, dict):
            return tuple(path) + (seg,), False
    return tuple(path), kind == "extra_forbidden"


def _holds(container: Any, seg: str | int) -> bool:
    """Whether `seg` is a key of the mapping, or an index of the list, `container`."""
    if isinstance(container, dict):
        return isinstance(seg, str) and seg in container
    return isinstance(container, list) and isinstance(seg, int) and 0 <= seg < len(container)


def _expected_fields(model: type[BaseModel], data: Any, path: tuple) -> list[str]:
    """Field names valid where the unknown field at `path` was written (for did-you-mean),
    found by walking the model types along the path."""
    from .models import RESOURCE_TYPES

    current: Any = model
    data_here = data
    keyed = False  # the next segment is a key of a mapping of models (or a list index)
    for seg in path[:-1]:
        data_here = data_here[seg] if isinstance(data_here, dict | list) else None
        if keyed:
            keyed = False
            if current == "resource":  # a resource entry: its type says which model
                rtype = data_here.get("type") if isinstance(data_here, dict) else None
                current = RESOURCE_TYPES.get(rtype) if isinstance(rtype, str) else None
            continue
        field = getattr(current, "model_fields", {}).get(seg)
        if field is None:
            return []
        if seg == "resources":
            current, keyed = "resource", True
            continue
        current, keyed = _model_of(field.annotation)
    return [] if keyed else list(getattr(current, "model_fields", {}) or [])


def _model_of(annotation: Any) -> tuple[Any, bool]:
    """The model a field holds, and whether it holds it in a mapping or list."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    container = typing.get_origin(annotation) in (dict, list)
    for arg in typing.get_args(annotation):
        found, nested = _model_of(arg)
        if found is not None:
            return found, container or nested
    return None, False


def _diagnostic(path: tuple, is_key: bool, errs: list[ErrorDetails], data: Any, positions: Positions,
                prefix: tuple, model: type[BaseModel]) -> Diagnostic:
    full = prefix + path
    where = ".".join(str(p) for p in path) or "(top level)"
    kinds = {e["type"] for e in errs}
    loc = positions.of(full, key=is_key or "missing" in kinds)
    if "extra_forbidden" in kinds:
        name = str(path[-1]) if path else ""
        choices = _expected_fields(model, data, path)
        hint = did_you_mean(name, choices)
        allowed = ", ".join(f"'{c}'" for c in choices if c != "type")
        return Diagnostic(f"unknown field '{name}'", location=loc,
                          help=hint or (f"allowed fields here: {allowed}" if allowed
                                        else "remove it"))
    if "missing" in kinds:
        name = str(path[-1])
        parent = ".".join(str(p) for p in path[:-1]) or "the stack"
        return Diagnostic(f"missing required field '{name}' in {parent}",
                          location=positions.of(prefix + path[:-1]),
                          help=f"add '{name}:' to {parent}")
    if "union_tag_invalid" in kinds or "union_tag_not_found" in kinds:
        from .models import RESOURCE_TYPES

        got = _get(data, path + ("type",))
        loc = positions.of(full + ("type",)) or loc
        hint = did_you_mean(str(got), RESOURCE_TYPES) if got else ""
        types = ", ".join(RESOURCE_TYPES)
        summary = f"unknown resource type '{got}'" if got else "resource has no 'type'"
        return Diagnostic(summary, location=loc,
                          help=(hint + " " if hint else "") + f"resource types: {types}")
    value = _get(data, path)
    msgs = []
    for e in errs:
        if e["type"] == "string_pattern_mismatch" and len(errs) > 1:
            continue  # the "or a ${...} reference" half of a Ref[T] union
        msgs.append(_message(e))
    if len(errs) > 1 and any(e["type"] == "string_pattern_mismatch" for e in errs):
        msgs = [m + " (or a ${...} reference)" for m in msgs]
    msgs = list(dict.fromkeys(msgs)) or [_message(errs[0])]
    details = msgs[1:]
    if value is not None and not isinstance(value, dict | list):
        details.append(f"got: {value!r}")
    return Diagnostic(f"invalid value for '{where}': {msgs[0]}", location=loc,
                      detail="\n".join(details), help=_help_for(errs))


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}"
    if kind == "string_pattern_mismatch" and "d)$" in str(ctx.get("pattern", "")):
        return "expected a duration such as 30s, 5m, 2h or 1d"
    if kind.endswith("_parsing") or kind.endswith("_type"):
        word = kind.split("_")[0]
        return f"expected {_TYPE_WORDS.get(word, word)}"
    msg = err.get("msg", kind)
    return msg.removeprefix("Value error, ")


def _help_for(errs: list[ErrorDetails]) -> str:
    kind = errs[0]["type"]
    if kind == "literal_error":
        return f"use one of: {errs[0].get('ctx', {}).get('expected', '')}"
    if kind == "value_error":
        # The message names the fields involved; the schema lists what each one takes.
        return "change the fields named above; 'mlform schema' lists what each one accepts"
    if kind in ("byte_size", "byte_size_unit"):
        return "write a number of bytes or a size with a unit, such as 64MiB or 1GB"
    return "fix the value at the marked position"


def _get(data: Any, path: tuple) -> Any:
    cur = data
    for seg in path:
        try:
            cur = cur[seg]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def describe_without_values(exc: ValidationError) -> str:
    """A pydantic error in words that never repeats the input (which may be a revealed
    secret, as it is in a provider's inputs): `gates.0.min: expected a number`."""
    errors = exc.errors(include_url=False, include_input=False)
    if len(errors) > 1:  # the "or a ${...} reference" half of a Ref[T] union
        errors = [e for e in errors if e["type"] != "string_pattern_mismatch"] or errors
    said: dict[str, None] = {}  # an ordered set: each message once, in pydantic's order
    for e in errors:
        # Union members appear in the path as type names ("float", "constrained-str").
        path = ".".join(str(p) for p in e["loc"] if not (
            isinstance(p, str) and (p in _TYPE_WORDS or "-" in p or "[" in p)))
        said.setdefault(f"{path or '(top level)'}: {_message(e)}", None)
    return "; ".join(said)
