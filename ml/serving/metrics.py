"""The server's Prometheus metrics: requests, errors and latency per variant.

Requests that were the client's fault (instances no variant could take) are
counted apart, as `client_errors`: they are neither requests a variant answered
nor its errors, and they take no place in its latency.

Each server has its own registry, so the text at `/metrics` holds exactly these
series (no process-wide default collectors from whatever else was imported).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .stats import CLIENT_ERROR, OK

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)
LABELS = ("variant", "model")

__all__ = ["CONTENT_TYPE", "ServingMetrics"]


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlform_endpoint_requests",
            "Prediction requests a variant answered or failed (client errors apart)", LABELS,
            registry=self.registry)
        self.errors = Counter(
            "mlform_endpoint_errors", "Prediction requests a variant failed to answer",
            LABELS, registry=self.registry)
        self.client_errors = Counter(
            "mlform_endpoint_client_errors",
            "Prediction requests refused as the client's fault (instances no variant takes)",
            LABELS, registry=self.registry)
        self.instances = Counter(
            "mlform_endpoint_instances", "Instances predicted", LABELS, registry=self.registry)
        self.latency = Histogram(
            "mlform_endpoint_request_latency_seconds", "Time to answer a prediction request",
            LABELS, buckets=LATENCY_BUCKETS, registry=self.registry)
        self.shadow = Counter(
            "mlform_endpoint_shadow_requests", "Copies of requests answered by shadow variants",
            LABELS, registry=self.registry)
        self.rejected = Counter(
            "mlform_endpoint_rejected_requests",
            "Requests refused before reaching a variant (not JSON, no instances, too large)",
            registry=self.registry)
        self.traffic = Gauge(
            "mlform_endpoint_traffic_percent", "Configured share of requests per variant",
            ("variant",), registry=self.registry)
        # label lookups cost more than the increments: each variant's series are kept
        self._series: dict[tuple[str, str], tuple] = {}

    def record(self, variant: str, model: str, seconds: float, instances: int,
               outcome: int) -> None:
        """`outcome`: `stats.OK`, `ERROR` or `CLIENT_ERROR`."""
        series = self._series.get((variant, model))
        if series is None:
            series = self._series[(variant, model)] = tuple(
                m.labels(variant, model) for m in
                (self.requests, self.latency, self.instances, self.errors, self.client_errors))
        requests, latency, instances_seen, errors, client_errors = series
        if outcome == CLIENT_ERROR:
            client_errors.inc()
            return
        requests.inc()
        latency.observe(seconds)
        if outcome == OK:
            instances_seen.inc(instances)
        else:
            errors.inc()

    def set_traffic(self, traffic: dict[str, float]) -> None:
        self.traffic.clear()
        for variant, percent in traffic.items():
            self.traffic.labels(variant).set(percent)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
