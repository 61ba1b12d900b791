"""`${...}` references: finding them and substituting their values.

A string that is exactly one reference keeps the referenced value's type; a
reference embedded in other text is stringified. `$${` writes a literal `${`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..values import Secret, Unknown

_REF = re.compile(r"(?<!\$)\$\{([^}]*)\}")
_WHOLE = re.compile(r"^\$\{([^}]*)\}$")
_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$|^[0-9]+$")


@dataclass(frozen=True)
class Ref:
    """One parsed reference: `var.x` has root 'var'; `train.artifact` has root 'train'."""

    text: str                  # what was between ${ and }
    root: str
    path: tuple[str, ...]
    offset: int                # where `${` starts inside the string

    @property
    def is_var(self) -> bool:
        return self.root == "var"

    def __str__(self) -> str:
        return "${" + self.text + "}"


class RefSyntaxError(ValueError):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


def parse_ref(text: str, offset: int = 0) -> Ref:
    inner = text.strip()
    if not inner:
        raise RefSyntaxError("empty reference '${}'", offset)
    parts = inner.split(".")
    for part in parts:
        if not _SEGMENT.match(part):
            raise RefSyntaxError(
                f"invalid reference '${{{text}}}': expected NAME.ATTR or var.NAME", offset)
    if len(parts) < 2:
        raise RefSyntaxError(
            f"reference '${{{text}}}' names no attribute: write "
            f"'${{{inner}.ATTR}}' (a resource's attribute) or '${{var.{inner}}}'", offset)
    return Ref(text=inner, root=parts[0], path=tuple(parts[1:]), offset=offset)


def refs_in_string(s: str) -> Iterator[Ref]:
    unterminated = s.find("${")
    for m in _REF.finditer(s):
        yield parse_ref(m.group(1), m.start())
    # An opening `${` with no closing brace is a mistake worth reporting.
    if unterminated >= 0 and "}" not in s[unterminated:] and not s[unterminated - 1:unterminated] == "$":
        raise RefSyntaxError("unterminated reference: '${' has no closing '}'", unterminated)


def walk_refs(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Ref]]:
    """Every reference in a nested value, with the path of the string holding it."""
    if isinstance(value, str):
        for ref in refs_in_string(value):
            yield path, ref
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from walk_refs(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk_refs(v, path + (i,))


def is_whole_ref(s: Any) -> bool:
    return isinstance(s, str) and bool(_WHOLE.match(s))


def substitute(value: Any, resolve: Callable[[Ref], Any]) -> Any:
    """Replace every reference in `value` by `resolve(ref)`.

    Unknowns propagate: a string that embeds an unknown becomes unknown. A
    string that embeds a secret becomes a secret.
    """
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return resolve(parse_ref(whole.group(1)))
        if "${" not in value:
            return value
        secret = False
        pieces: list[str] = []
        last = 0
        for m in _REF.finditer(value):
            pieces.append(value[last:m.start()])
            got = resolve(parse_ref(m.group(1), m.start()))
            if isinstance(got, Unknown):
                return Unknown(value)
            if isinstance(got, Secret):
                secret = True
                got = got.reveal()
            pieces.append(_stringify(got))
            last = m.end()
        pieces.append(value[last:])
        text = "".join(pieces).replace("$${", "${")
        return Secret(text) if secret else text
    if isinstance(value, dict):
        return {k: substitute(v, resolve) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, resolve) for v in value]
    return value


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)
