"""Azure Monitor metrics of online endpoints, from the scoring frontend's `Stats`, in the REST
shape `GET {endpoint ARM id}/providers/Microsoft.Insights/metrics` returns (api-version
2018-01-01):

    ?metricnames=RequestsPerMinute,RequestLatency,RequestLatency_P99
    &timespan=<start>/<end>      (ISO 8601; default: the last hour)
    &interval=PT1M               (ISO 8601 duration; default PT1M)
    &aggregation=Total,Average,Count,Maximum,Minimum
    &$filter=deployment eq '*' and statusCodeClass eq '*'

Metrics (as the service names them): RequestsPerMinute (Count; dimensions deployment,
statusCode, statusCodeClass "2xx"/"4xx"/"5xx", modelStatusCode), RequestLatency (Milliseconds,
average/min/max/count over requests; dimension deployment), RequestLatency_P99
(Milliseconds, the 99th percentile per interval; dimension deployment). A dimension with
`eq '*'` splits the series by every value of it, `eq 'x'` keeps only x, still one series per
value kept (several `or`-ed values allowed: `deployment eq 'a' or deployment eq 'b'`); without
a filter there is one series, with no metadata values. Every interval
of the timespan has a data point; an interval with no requests has total/count 0 and no
average, as Azure Monitor answers.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import AzureError, bad_request
from .frontend import WS, Request, Response, Router
from .scoring import Event, Stats
from .state import PROVIDER

METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # name -> (unit, localized name, dimensions)
    "RequestsPerMinute": ("Count", "Requests Per Minute",
                          ("deployment", "statusCode", "statusCodeClass", "modelStatusCode")),
    "RequestLatency": ("MilliSeconds", "Request Latency", ("deployment",)),
    "RequestLatency_P99": ("MilliSeconds", "Request Latency P99", ("deployment",)),
}
AGGREGATIONS = {"total", "average", "count", "maximum", "minimum"}


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text or "")
    if not match or not any(match.groups()):
        raise bad_request(f"Invalid interval {text!r}: use an ISO 8601 duration such as PT1M.")
    d, h, m, s = (int(g or 0) for g in match.groups())
    return timedelta(days=d, hours=h, minutes=m, seconds=s)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_filter(text: str) -> dict[str, set[str] | None]:
    """dimension -> wanted values (None: split by every value, `eq '*'`)."""
    wanted: dict[str, set[str] | None] = {}
    if not text.strip():
        return wanted
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        for term in re.split(r"\s+or\s+", clause.strip().strip("()"), flags=re.IGNORECASE):
            match = re.fullmatch(r"\(?\s*(\w+)\s+eq\s+'([^']*)'\s*\)?", term.strip())
            if not match:
                raise bad_request(f"Unsupported $filter term {term!r}: use \"<dimension> eq '<value>'\".")
            name, value = match.group(1), match.group(2)
            if value == "*":
                wanted[name] = None
            else:
                current = wanted.get(name, set())
                if current is not None:
                    current.add(value)
                    wanted[name] = current
    return wanted


def _dimension(event: Event, name: str) -> str:
    if name == "deployment":
        return event.deployment
    if name == "statusCode":
        return str(event.status)
    if name == "statusCodeClass":
        return f"{event.status // 100}xx"
    if name == "modelStatusCode":
        return str(event.status)
    raise KeyError(name)


class Metrics:
    def __init__(self, stats: Stats, location: str):
        self.stats = stats
        self.location = location

    def register(self, router: Router) -> None:
        router.add("GET", WS + r"/onlineEndpoints/(?P<endpoint>[^/]+)/providers/Microsoft\.Insights/metrics",
                   "ListMetrics", "Microsoft.Insights/metrics/read", self._list)

    def _list(self, request: Request) -> Response:
        q = request.query
        endpoint = request.groups["endpoint"]
        resource_id = request.path.split("/providers/Microsoft.Insights", 1)[0]
        names = [n for n in (q.get("metricnames") or "RequestsPerMinute").split(",") if n]
        for name in names:
            if name not in METRICS:
                raise AzureError(400, "BadRequest",
                                 f"Failed to find metric configuration for provider: {PROVIDER}, "
                                 f"resource Type: {PROVIDER}/workspaces/onlineEndpoints, metric: "
                                 f"{name}, Valid metrics: {', '.join(METRICS)}")
        aggregations = [a.strip().lower() for a in (q.get("aggregation") or "").split(",") if a.strip()]
        for agg in aggregations:
            if agg not in AGGREGATIONS:
                raise bad_request(f"Invalid aggregation {agg!r}.")
        interval = _parse_duration(q.get("interval") or "PT1M")
        if q.get("timespan"):
            start_text, _, end_text = q["timespan"].partition("/")
            start, end = _parse_time(start_text), _parse_time(end_text)
        else:
            end = datetime.now(UTC)
            start = end - timedelta(hours=1)
        # Azure Monitor aligns the series to whole intervals.
        step = interval.total_seconds()
        start = datetime.fromtimestamp(start.timestamp() // step * step, UTC)
        wanted = _parse_filter(q.get("$filter") or "")
        events = [e for e in self.stats.of(endpoint)
                  if start.timestamp() <= e.at < end.timestamp()]
        value = []
        for name in names:
            unit, label, dimensions = METRICS[name]
            for dim in wanted:
                if dim not in dimensions:
                    raise bad_request(f"Metric {name} has no dimension {dim!r} "
                                      f"(it has {', '.join(dimensions)}).")
            default = ["total"] if name == "RequestsPerMinute" else ["average"]
            aggs = aggregations or default
            value.append({
                "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{name}",
                "type": "Microsoft.Insights/metrics",
                "name": {"value": name, "localizedValue": label},
                "displayDescription": label, "unit": unit, "errorCode": "Success",
                "timeseries": self._series(name, events, wanted, start, end, interval, aggs)})
        return Response(200, {"cost": 0, "timespan": f"{_stamp(start)}/{_stamp(end)}",
                              "interval": q.get("interval") or "PT1M", "value": value,
                              "namespace": f"{PROVIDER}/workspaces/onlineEndpoints",
                              "resourceregion": self.location})

    def _series(self, name: str, events: list[Event], wanted: dict[str, set[str] | None],
                start: datetime, end: datetime, interval: timedelta,
                aggs: list[str]) -> list[dict[str, Any]]:
        # Every dimension the filter names splits the series (`eq '*'` by every value, `eq 'x'`
        # by the values kept), as Azure Monitor answers.
        split = list(wanted)
        groups: dict[tuple[str, ...], list[Event]] = defaultdict(list)
        for event in events:
            if any(values is not None and _dimension(event, d) not in values
                   for d, values in wanted.items()):
                continue
            groups[tuple(_dimension(event, d) for d in split)].append(event)
        if not split and not groups:
            groups[()] = []
        series = []
        step = interval.total_seconds()
        buckets = max(1, math.ceil((end - start).total_seconds() / step))
        for key, group in sorted(groups.items()):
            by_bucket: dict[int, list[Event]] = defaultdict(list)
            for event in group:
                by_bucket[int((event.at - start.timestamp()) // step)].append(event)
            data = []
            for index in range(buckets):
                point: dict[str, Any] = {"timeStamp": _stamp(start + index * interval)}
                items = by_bucket.get(index, [])
                values = ([1.0] * len(items) if name == "RequestsPerMinute"
                          else [e.latency_ms for e in items])
                if name == "RequestLatency_P99" and values:
                    ordered = sorted(values)
                    values = [ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]]
                for agg in aggs:
                    if agg == "total":
                        point["total"] = float(sum(values))
                    elif agg == "count":
                        point["count"] = float(len(values))
                    elif values:
                        point[agg] = float({"average": sum(values) / len(values),
                                            "maximum": max(values), "minimum": min(values)}[agg])
                data.append(point)
            series.append({"metadatavalues": [{"name": {"value": d, "localizedValue": d}, "value": v}
                                              for d, v in zip(split, key, strict=True)],
                           "data": data})
        return series
