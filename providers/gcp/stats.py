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
from datetime import UTC, datetime
from typing import Any

from .clients import Clients

RESPONSE_COUNT = "aiplatform.googleapis.com/prediction/online/response_count"
LATENCIES = "aiplatform.googleapis.com/prediction/online/prediction_latencies"


def _series(clients: Clients, metric: str, endpoint_id: str, deployed: str,
            since: float, resource: str) -> list[dict[str, Any]]:
    flt = (f'metric.type = "{metric}" AND resource.labels.endpoint_id = "{endpoint_id}" '
           f'AND metric.labels.deployed_model_id = "{deployed}"')
    params = {"filter": flt, "interval.startTime": _rfc3339(since),
              "interval.endTime": _rfc3339(time.time() + 1), "view": "FULL"}
    found: list[dict[str, Any]] = []
    while True:
        page = clients.rest_get("monitoring", f"v3/projects/{clients.cfg.project}/timeSeries",
                                params, method="list_time_series", resource=resource)
        found.extend(page.get("timeSeries") or [])
        if not page.get("nextPageToken"):
            return found
        params = {**params, "pageToken": page["nextPageToken"]}


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _stamp(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def window(clients: Clients, endpoint_id: str, deployed_ids: list[str], since: float,
           resource: str = "") -> dict[str, Any]:
    """The deployed models' answers since `since` (unix time), summed."""
    requests = errors = client_errors = 0
    latencies: list[tuple[float, int]] = []  # (bucket upper bound in ms, count)
    for deployed in deployed_ids:
        for series in _series(clients, RESPONSE_COUNT, endpoint_id, deployed, since, resource):
            code = str((series.get("metric") or {}).get("labels", {}).get("response_code", "200"))
            count = sum(int(p["value"].get("int64Value") or 0) for p in _points(series, since))
            if code.startswith("4"):
                client_errors += count
                continue
            requests += count
            if code.startswith("5"):
                errors += count
        for series in _series(clients, LATENCIES, endpoint_id, deployed, since, resource):
            for point in _points(series, since):
                latencies.extend(_buckets(point["value"].get("distributionValue") or {}))
    return {"requests": requests, "errors": errors, "client_errors": client_errors,
            "p99_ms": p99(latencies)}


def _points(series: dict[str, Any], since: float) -> list[dict[str, Any]]:
    """The series' points that end after `since` (a step's own answers)."""
    return [p for p in series.get("points") or []
            if _stamp((p.get("interval") or {}).get("endTime")) >= since]


def _buckets(dist: dict[str, Any]) -> list[tuple[float, int]]:
    """(upper bound, count) per bucket of a Distribution; the mean stands in for the
    bounds when the distribution carries no buckets."""
    counts = [int(c) for c in dist.get("bucketCounts") or []]
    options = dist.get("bucketOptions") or {}
    bounds: list[float] = []
    if (explicit := options.get("explicitBuckets")) and explicit.get("bounds"):
        bounds = [float(b) for b in explicit["bounds"]]
    elif (exponential := options.get("exponentialBuckets")):
        n = int(exponential.get("numFiniteBuckets") or 0)
        scale, growth = float(exponential.get("scale", 1)), float(exponential.get("growthFactor", 2))
        bounds = [scale * growth ** i for i in range(n + 1)]
    elif (linear := options.get("linearBuckets")):
        n = int(linear.get("numFiniteBuckets") or 0)
        offset, width = float(linear.get("offset", 0)), float(linear.get("width", 1))
        bounds = [offset + width * i for i in range(n + 1)]
    if not counts or not bounds:
        count = int(dist.get("count") or 0)
        return [(float(dist.get("mean") or 0.0), count)] if count else []
    # bucket 0 is underflow (< bounds[0]), bucket i is [bounds[i-1], bounds[i]), the last
    # is overflow: its upper bound is unknown, the last finite bound stands for it
    return [(bounds[min(i, len(bounds) - 1)], count) for i, count in enumerate(counts)]


def p99(buckets: list[tuple[float, int]]) -> float:
    """The 99th percentile of counts by bucket upper bound (0 with no answers)."""
    total = sum(c for _, c in buckets)
    if total == 0:
        return 0.0
    seen = 0
    ordered = sorted(buckets)
    for bound, count in ordered:
        seen += count
        if seen >= 0.99 * total:
            return bound
    return ordered[-1][0]
