"""An endpoint's request statistics per deployment, where Azure keeps them: Azure Monitor's
metrics on the endpoint resource (`Microsoft.Insights/metrics`, api-version 2018-01-01),
`RequestsPerMinute` split by `statusCodeClass` and `RequestLatency_P99`, filtered to the
deployments being judged.

A rollout step is judged on the new deployments' window since the step began, in the
shape `mlform.ml.serving.judging` reads: `{"requests", "errors", "client_errors",
"p99_ms"}`, where requests are the answers that were not the client's fault (4xx are
counted apart), errors the 5xx among them. Azure Monitor publishes these metrics a minute
or more late on the real platform: give `rollout.wait` and `rollback.evidence_timeout`
room for that (docs/providers/azure.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .clients import Clients

API_VERSION = "2018-01-01"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _filter(deployments: list[str], split_by: str = "") -> str:
    chosen = " or ".join(f"deployment eq '{d}'" for d in deployments)
    return f"({chosen})" + (f" and {split_by} eq '*'" if split_by else "")


def window(clients: Clients, endpoint: str, deployments: list[str], since: float,
           resource: str = "") -> dict[str, Any]:
    """The deployments' answers since `since` (unix time), summed."""
    if not deployments:
        return {"requests": 0, "errors": 0, "client_errors": 0, "p99_ms": 0.0}
    path = (f"{clients.cfg.workspace_id}/onlineEndpoints/{endpoint}"
            "/providers/Microsoft.Insights/metrics")
    span = f"{_iso(int(since))}/{_iso(time.time() + 60)}"
    counts = clients.arm_get(path, {
        "api-version": API_VERSION, "metricnames": "RequestsPerMinute", "timespan": span,
        "interval": "PT1M", "aggregation": "Total",
        "$filter": _filter(deployments, "statusCodeClass")}, area="metrics", resource=resource)
    requests = errors = client_errors = 0
    for metric in counts.get("value", []):
        for series in metric.get("timeseries", []):
            kind = _dimension(series, "statusCodeClass")
            total = int(sum(float(p.get("total") or 0) for p in series.get("data", [])))
            if kind.startswith("4"):
                client_errors += total
                continue
            requests += total
            if kind.startswith("5"):
                errors += total
    latency = clients.arm_get(path, {
        "api-version": API_VERSION, "metricnames": "RequestLatency_P99", "timespan": span,
        "interval": "PT1M", "aggregation": "Maximum", "$filter": _filter(deployments)},
        area="metrics", resource=resource)
    p99 = 0.0
    for metric in latency.get("value", []):
        for series in metric.get("timeseries", []):
            for point in series.get("data", []):
                if point.get("maximum") is not None:
                    p99 = max(p99, float(point["maximum"]))
    return {"requests": requests, "errors": errors, "client_errors": client_errors,
            "p99_ms": p99}


def _dimension(series: dict[str, Any], name: str) -> str:
    for item in series.get("metadatavalues", []):
        if (item.get("name") or {}).get("value", "").lower() == name.lower():
            return str(item.get("value", ""))
    return ""
