"""Cloud Monitoring's `projects.timeSeries.list` (REST v3) for the two online-prediction
metrics a rollout judges: `aiplatform.googleapis.com/prediction/online/response_count`
(INT64 DELTA, metric labels `deployed_model_id`, `response_code`) and
`.../prediction_latencies` (DISTRIBUTION DELTA in ms, labels `deployed_model_id`,
`latency_type`="total"), on the monitored resource `aiplatform.googleapis.com/Endpoint`
(labels `resource_container`, `location`, `endpoint_id`).

Simplifications: each series has ONE point covering the requested interval (start, end]
(the real service reports one point per sampling period, about a minute, and lags a few
minutes); aggregation parameters are ignored; series without events are left out, as on the
service. Enums are written as names, as the real REST API writes them.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from .errors import ApiError, permission_denied
from .frontend import Router
from .prediction import Event, Stats
from .state import Store

RESPONSE_COUNT = "aiplatform.googleapis.com/prediction/online/response_count"
LATENCIES = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
RESOURCE = "aiplatform.googleapis.com/Endpoint"
_TERM = re.compile(r'^\s*(?P<key>[a-z_.]+)\s*=\s*"(?P<value>[^"]*)"\s*$')
BUCKETS: dict[str, Any] = {"numFiniteBuckets": 20, "growthFactor": 2.0, "scale": 1.0}  # ms: 1, 2, 4, ...


class Monitoring:
    """The timeSeries.list route over the prediction statistics."""

    def __init__(self, store: Store, stats: Stats):
        self.store = store
        self.stats = stats

    def register(self, r: Router) -> None:
        r.add("GET", r"/v3/projects/(?P<mproject>[^/]+)/timeSeries", "ListTimeSeries",
              "monitoring.timeSeries.list", self.list_series)

    def list_series(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if g["mproject"] not in (self.store.project, self.store.project_number):
            raise permission_denied("monitoring.timeSeries.list", f"projects/{g['mproject']}")
        terms = _parse(q.get("filter", ""))
        metric = terms.pop("metric.type", None)
        if metric not in (RESPONSE_COUNT, LATENCIES):
            raise ApiError("INVALID_ARGUMENT", f"The fake serves metric.type {RESPONSE_COUNT!r} and "
                           f"{LATENCIES!r}, not {metric!r}.")
        if "interval.endTime" not in q:
            raise ApiError("INVALID_ARGUMENT", "interval.endTime must be set.")
        start_text = q.get("interval.startTime") or q["interval.endTime"]
        start, end = _time(start_text), _time(q["interval.endTime"])
        if terms.get("resource.labels.location", self.store.region) != self.store.region:
            return 200, {}
        with self.stats.lock:
            recorded = list(self.stats.events)
        events = [e for e in recorded if start < e.at <= end and _keep(e, terms, metric)]
        groups: dict[tuple[str, ...], list[Event]] = {}
        for e in events:
            key = (e.endpoint_id, e.deployed_model_id) + ((str(e.code),) if metric == RESPONSE_COUNT else ())
            groups.setdefault(key, []).append(e)
        interval = {"startTime": start_text, "endTime": q["interval.endTime"]}
        series = [self._series(metric, key, group, interval) for key, group in sorted(groups.items())]
        return 200, ({"timeSeries": series} if series else {})

    def _series(self, metric: str, key: tuple[str, ...], events: list[Event],
                interval: dict[str, str]) -> dict[str, Any]:
        labels = {"deployed_model_id": key[1]}
        if metric == RESPONSE_COUNT:
            labels["response_code"] = key[2]
            value: dict[str, Any] = {"int64Value": str(len(events))}
        else:
            labels["latency_type"] = "total"
            value = {"distributionValue": _distribution([e.latency_ms for e in events])}
        return {"metric": {"type": metric, "labels": labels},
                "resource": {"type": RESOURCE, "labels": {
                    "resource_container": f"projects/{self.store.project_number}",
                    "location": self.store.region, "endpoint_id": key[0]}},
                "metricKind": "DELTA", "valueType": "INT64" if metric == RESPONSE_COUNT else "DISTRIBUTION",
                "unit": "1" if metric == RESPONSE_COUNT else "ms",
                "points": [{"interval": interval, "value": value}]}


def _parse(text: str) -> dict[str, str]:
    terms: dict[str, str] = {}
    for part in re.split(r"\s+AND\s+", text.strip()) if text.strip() else []:
        m = _TERM.match(part)
        if m is None:
            raise ApiError("INVALID_ARGUMENT", f"The fake's monitoring filter takes key = \"value\" "
                           f"terms joined by AND; cannot read {part!r}.")
        terms[m["key"]] = m["value"]
    return terms


def _keep(e: Event, terms: dict[str, str], metric: str) -> bool:
    values = {"resource.type": RESOURCE, "resource.labels.endpoint_id": e.endpoint_id,
              "resource.labels.location": "", "metric.labels.deployed_model_id": e.deployed_model_id,
              "resource.labels.deployed_model_id": e.deployed_model_id,
              "metric.labels.response_code": str(e.code), "metric.labels.latency_type": "total"}
    for key, wanted in terms.items():
        if key == "resource.labels.location":
            continue
        if key not in values:
            raise ApiError("INVALID_ARGUMENT", f"The fake cannot filter on {key!r}.")
        if values[key] != wanted:
            return False
    return True


def _time(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ApiError("INVALID_ARGUMENT", f"Invalid timestamp {text!r}.") from None


def _distribution(values: list[float]) -> dict[str, Any]:
    """A `google.api.Distribution` of `values` over exponential buckets (1, 2, 4, ... ms)."""
    n = len(values)
    mean = sum(values) / n
    counts = [0] * (BUCKETS["numFiniteBuckets"] + 2)
    for v in values:
        index = 0 if v < 1 else min(int(math.log2(v)) + 1, len(counts) - 1)
        counts[index] += 1
    return {"count": str(n), "mean": mean,
            "sumOfSquaredDeviation": sum((v - mean) ** 2 for v in values),
            "bucketOptions": {"exponentialBuckets": BUCKETS}, "bucketCounts": [str(c) for c in counts]}
