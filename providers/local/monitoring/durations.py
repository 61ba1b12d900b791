"""Durations as the stack spec writes them (`30s`, `5m`, `2h`, `1d`), in seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")


def seconds(duration: str) -> float:
    match = _PATTERN.match(duration)
    if not match:
        raise ValueError(f"'{duration}' is not a duration: write a number and a unit "
                         "(ms, s, m, h, d), such as '30s' or '1h'")
    return float(match.group(1)) * _UNITS[match.group(2)]
