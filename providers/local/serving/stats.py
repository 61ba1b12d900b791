"""Recent request outcomes, for judging a rollout step on the traffic it saw.

Prometheus counters only grow and histograms only bucket; a rollout step needs
the requests, errors and exact p99 latency of one variant set since the step
began. This keeps each answered request's time, latency and success, per
variant set and variant, bounded to the newest `keep` per variant.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Window:
    requests: int
    errors: int
    p99_ms: float | None
    """None when no request was seen."""

    def as_dict(self) -> dict:
        return asdict(self)


def p99(latencies_ms: list[float]) -> float | None:
    """Nearest-rank 99th percentile."""
    if not latencies_ms:
        return None
    ordered = sorted(latencies_ms)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def summarise(rows: list[tuple[float, float, bool]]) -> Window:
    return Window(requests=len(rows), errors=sum(1 for _, _, ok in rows if not ok),
                  p99_ms=p99([ms for _, ms, _ in rows]))


class RecentOutcomes:
    def __init__(self, keep: int = 100_000):
        self._keep = keep
        self._rows: dict[tuple[str, str], deque[tuple[float, float, bool]]] = {}

    def record(self, track: str, variant: str, latency_ms: float, ok: bool,
               at: float | None = None) -> None:
        """`at`: when it was answered (unix time), now by default."""
        rows = self._rows.get((track, variant))
        if rows is None:
            rows = self._rows[(track, variant)] = deque(maxlen=self._keep)
        rows.append((time.time() if at is None else at, latency_ms, ok))

    def since(self, t: float) -> dict[str, dict]:
        """{track: {"total": Window, "variants": {variant: Window}}} for requests after `t`."""
        out: dict[str, dict] = {}
        by_track: dict[str, list] = {}
        for (track, variant), rows in self._rows.items():
            recent = [r for r in rows if r[0] >= t]
            if not recent:
                continue
            by_track.setdefault(track, []).extend(recent)
            out.setdefault(track, {"variants": {}})["variants"][variant] = \
                summarise(recent).as_dict()
        for track, rows in by_track.items():
            out[track]["total"] = summarise(rows).as_dict()
        return out
