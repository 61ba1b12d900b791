"""Recent request outcomes, for judging a rollout step on the traffic it saw.

Prometheus counters only grow and histograms only bucket; a rollout step needs
the requests, errors and exact p99 latency of one variant set since the step
began. This keeps each request's time, latency and outcome, per variant set and
variant, bounded to the newest `keep` per variant.

An outcome is one of three: the variant answered (`OK`), the variant failed
(`ERROR`: its model raised, or it refused instances the endpoint's contract
accepts), or the request was the client's fault (`CLIENT_ERROR`: instances no
variant could take). Only the first two are evidence about a variant: client
errors are counted apart, so malformed requests can neither roll a canary back
nor stand in for the requests a step needs before it is judged.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass

OK, ERROR, CLIENT_ERROR = 0, 1, 2


@dataclass(frozen=True)
class Window:
    requests: int
    """Requests the variants answered or failed: client errors are not among them."""
    errors: int
    """Of those, the ones the variants failed."""
    client_errors: int
    """Requests refused as the client's fault; no evidence about the variants."""
    p99_ms: float | None
    """Over `requests`; None when there were none."""

    def as_dict(self) -> dict:
        return asdict(self)


def p99(latencies_ms: list[float]) -> float | None:
    """Nearest-rank 99th percentile."""
    if not latencies_ms:
        return None
    ordered = sorted(latencies_ms)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def summarise(rows: list[tuple[float, float, int]]) -> Window:
    served = [(ms, outcome) for _, ms, outcome in rows if outcome != CLIENT_ERROR]
    return Window(requests=len(served),
                  errors=sum(1 for _, outcome in served if outcome == ERROR),
                  client_errors=len(rows) - len(served),
                  p99_ms=p99([ms for ms, _ in served]))


class RecentOutcomes:
    def __init__(self, keep: int = 100_000):
        self._keep = keep
        self._rows: dict[tuple[str, str], deque[tuple[float, float, int]]] = {}

    def record(self, track: str, variant: str, latency_ms: float, outcome: int,
               at: float | None = None) -> None:
        """`outcome`: OK, ERROR or CLIENT_ERROR; `at`: when it was answered (unix time),
        now by default."""
        rows = self._rows.get((track, variant))
        if rows is None:
            rows = self._rows[(track, variant)] = deque(maxlen=self._keep)
        rows.append((time.time() if at is None else at, latency_ms, outcome))

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
        for track, seen in by_track.items():
            out[track]["total"] = summarise(seen).as_dict()
        return out
