"""Attribute-by-attribute comparison of two nested values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..values import Unknown, same_value


def diff_values(before: Any, after: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, before, after) for each leaf that differs; dict keys recurse, lists whole."""
    if isinstance(before, dict) and isinstance(after, dict) and \
            not _is_marker(before) and not _is_marker(after):
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                if after[key] is not None:
                    yield sub, None, after[key]
            elif key not in after:
                if before[key] is not None:
                    yield sub, before[key], None
            else:
                yield from diff_values(before[key], after[key], sub)
        return
    if isinstance(after, Unknown) or not same_value(before, after):
        yield path, before, after


def _is_marker(d: dict) -> bool:
    return len(d) == 1 and next(iter(d)) in ("$sensitive", "$unknown")
