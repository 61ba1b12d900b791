"""An endpoint's request statistics per deployed model, where Vertex AI keeps them: Cloud
Monitoring's `aiplatform.googleapis.com/prediction/online/response_count` (by
`response_code`) and `.../prediction_latencies` (a distribution, in milliseconds).

A rollout step is judged on the new deployed models' window since the step began, in
the shape `mlform.ml.serving.judging` reads: `{"requests", "errors", "client_errors",
"p99_ms"}`, where requests are the answers that were not the client's fault (4xx are
counted apart), errors the 5xx among them. Cloud Monitoring publishes these metrics a
few minutes late on the real platform: give `rollout.wait` and `rollback.evidence_timeout`
room for that (docs/providers/gcp.md).
"""

from __future__ import annotations

import time
from typing import Any

from .clients import Clients

RESPONSE_COUNT = "aiplatform.googleapis.com/prediction/online/response_count"
LATENCIES = "aiplatform.googleapis.com/prediction/online/prediction_latencies"


def _series(clients: Clients, metric: str, endpoint_id: str, deployed: str,
            since: float, resource: str) -> list[Any]:
    end = time.time() + 1
    flt = (f'metric.type = "{metric}" AND resource.labels.endpoint_id = "{endpoint_id}" '
           f'AND resource.labels.deployed_model_id = "{deployed}"')
    request = {"name": f"projects/{clients.cfg.project}", "filter": flt,
               "interval": {"start_time": {"seconds": int(since), "nanos": int(since % 1 * 1e9)},
                            "end_time": {"seconds": int(end)}},
               "view": 0}  # FULL
    return list(clients.call("monitoring", "list_time_series", request, resource=resource))


def _stamp(ts: Any) -> float:
    if ts is None:
        return 0.0
    if hasattr(ts, "timestamp"):
        return float(ts.timestamp())
    return float(getattr(ts, "seconds", 0)) + float(getattr(ts, "nanos", 0)) / 1e9


def window(clients: Clients, endpoint_id: str, deployed_ids: list[str], since: float,
           resource: str = "") -> dict[str, Any]:
    """The deployed models' answers since `since` (unix time), summed."""
    requests = errors = client_errors = 0
    latencies: list[tuple[float, int]] = []  # (bucket upper bound in ms, count)
    for deployed in deployed_ids:
        for series in _series(clients, RESPONSE_COUNT, endpoint_id, deployed, since, resource):
            code = str(dict(series.metric.labels).get("response_code", "200"))
            count = sum(int(p.value.int64_value or p.value.double_value or 0)
                        for p in series.points if _stamp(p.interval.end_time) >= since)
            if code.startswith("4"):
                client_errors += count
                continue
            requests += count
            if code.startswith("5"):
                errors += count
        for series in _series(clients, LATENCIES, endpoint_id, deployed, since, resource):
            for point in series.points:
                if _stamp(point.interval.end_time) >= since:
                    latencies.extend(_buckets(point.value.distribution_value))
    return {"requests": requests, "errors": errors, "client_errors": client_errors,
            "p99_ms": p99(latencies)}


def _buckets(dist: Any) -> list[tuple[float, int]]:
    """(upper bound, count) per bucket of a Distribution; the mean stands in for the
    bounds when the distribution carries no buckets."""
    counts = [int(c) for c in getattr(dist, "bucket_counts", []) or []]
    options = getattr(dist, "bucket_options", None)
    bounds: list[float] = []
    if options is not None:
        explicit = getattr(options, "explicit_buckets", None)
        exponential = getattr(options, "exponential_buckets", None)
        linear = getattr(options, "linear_buckets", None)
        if explicit is not None and list(explicit.bounds):
            bounds = [float(b) for b in explicit.bounds]
        elif exponential is not None and exponential.num_finite_buckets:
            bounds = [exponential.scale * exponential.growth_factor ** i
                      for i in range(exponential.num_finite_buckets + 1)]
        elif linear is not None and linear.num_finite_buckets:
            bounds = [linear.offset + linear.width * i
                      for i in range(linear.num_finite_buckets + 1)]
    if not counts or not bounds:
        count = int(getattr(dist, "count", 0) or 0)
        return [(float(getattr(dist, "mean", 0.0) or 0.0), count)] if count else []
    # bucket 0 is underflow (< bounds[0]), bucket i is [bounds[i-1], bounds[i]), the last
    # is overflow: its upper bound is unknown, its lower bound stands for it
    out = []
    for i, count in enumerate(counts):
        upper = bounds[min(i, len(bounds) - 1)]
        out.append((upper, count))
    return out


def p99(buckets: list[tuple[float, int]]) -> float:
    """The 99th percentile of counts by bucket upper bound (0 with no answers)."""
    total = sum(c for _, c in buckets)
    if total == 0:
        return 0.0
    seen = 0
    for bound, count in sorted(buckets):
        seen += count
        if seen >= 0.99 * total:
            return bound
    return sorted(buckets)[-1][0]
