"""Durations as the stack spec and flags write them (`200ms`, `30s`, `5m`, `2h`, `1d`), in seconds.

The one parser every part of mlform uses."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")


def seconds(duration: str | int | float) -> float:
    """Seconds in `duration`; a bare number is taken as seconds."""
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return float(duration)
    text = str(duration).strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"'{duration}' is not a duration: write a number and a unit "
                         "(ms, s, m, h, d), such as '30s' or '1h'")
    return float(match.group(1)) * _UNITS[match.group(2)]
