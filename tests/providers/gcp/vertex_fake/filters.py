"""The `filter` of list calls, the subset of the AIP-160 syntax Vertex list calls accept that
providers use: terms joined by AND, each `labels.KEY=VALUE`, `labels.KEY="VALUE"`,
`labels.KEY:*` (has the label), `display_name="..."` or `state=NAME`. Anything else is refused
with INVALID_ARGUMENT, so a provider never silently gets an unfiltered list."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError

_TERM = re.compile(
    r'^\s*(?P<field>labels\.[A-Za-z0-9_-]+|display_name|displayName|state)\s*'
    r'(?P<op>=|:)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s"]+)\s*$')

Predicate = Callable[[dict[str, Any]], bool]


def parse_filter(text: str, states: dict[str, int] | None = None) -> Predicate:
    """A predicate over a resource's REST JSON for `text` ("" matches everything)."""
    if not text.strip():
        return lambda _r: True
    terms = [_term(t, states or {}) for t in re.split(r"\s+AND\s+", text.strip())]
    return lambda r: all(t(r) for t in terms)


def _term(text: str, states: dict[str, int]) -> Predicate:
    m = _TERM.match(text)
    if m is None:
        raise ApiError("INVALID_ARGUMENT", f"Provided filter is not valid: {text!r} "
                       "(the fake supports labels.KEY=VALUE, labels.KEY:*, display_name=, state=, "
                       "joined by AND)")
    field, op, value = m["field"], m["op"], m["value"]
    if value.startswith('"'):
        value = value[1:-1].replace('\\"', '"')
    if field.startswith("labels."):
        key = field.split(".", 1)[1]
        if op == ":" and value == "*":
            return lambda r: key in (r.get("labels") or {})
        return lambda r: (r.get("labels") or {}).get(key) == value
    if field in ("display_name", "displayName"):
        return lambda r: r.get("displayName") == value
    if value not in states:
        raise ApiError("INVALID_ARGUMENT", f"Provided filter is not valid: unknown state {value!r}")
    return lambda r: r.get("state") == states[value]


def page(items: list[dict[str, Any]], query: dict[str, str], key: str) -> dict[str, Any]:
    """One page of `items` under `key`, honouring `pageSize` and `pageToken` (an offset)."""
    start = int(query.get("pageToken") or 0)
    size = int(query.get("pageSize") or 0) or 100
    reply: dict[str, Any] = {key: items[start:start + size]}
    if start + size < len(items):
        reply["nextPageToken"] = str(start + size)
    return reply
