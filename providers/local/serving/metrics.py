"""The server's Prometheus metrics: requests, errors and latency per variant.

Each server has its own registry, so the text at `/metrics` holds exactly these
series (no process-wide default collectors from whatever else was imported).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)
LABELS = ("variant", "model")

__all__ = ["CONTENT_TYPE", "ServingMetrics"]


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlform_endpoint_requests", "Prediction requests answered, by variant", LABELS,
            registry=self.registry)
        self.errors = Counter(
            "mlform_endpoint_errors", "Prediction requests a variant failed to answer",
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
            "Requests refused before reaching a variant (not JSON, no instances)",
            registry=self.registry)
        self.traffic = Gauge(
            "mlform_endpoint_traffic_percent", "Configured share of requests per variant",
            ("variant",), registry=self.registry)
        # label lookups cost more than the increments: each variant's series are kept
        self._series: dict[tuple[str, str], tuple] = {}

    def record(self, variant: str, model: str, seconds: float, instances: int,
               ok: bool) -> None:
        series = self._series.get((variant, model))
        if series is None:
            series = self._series[(variant, model)] = tuple(
                m.labels(variant, model)
                for m in (self.requests, self.latency, self.instances, self.errors))
        requests, latency, instances_seen, errors = series
        requests.inc()
        latency.observe(seconds)
        if ok:
            instances_seen.inc(instances)
        else:
            errors.inc()

    def set_traffic(self, traffic: dict[str, float]) -> None:
        self.traffic.clear()
        for variant, percent in traffic.items():
            self.traffic.labels(variant).set(percent)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
