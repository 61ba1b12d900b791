"""Online prediction: `:predict` and `:rawPredict` on an endpoint pick a deployed model by the
endpoint's traffic split, forward the body to its container's predict route and record, per
deployed model, each request's response code and latency (what Cloud Monitoring reports, see
monitoring.py). `inject_errors` makes the frontend answer 500 for a fraction of the requests
routed to one deployed model, recorded like any other 5xx.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .endpoints import Endpoints
from .errors import BY_HTTP, ApiError
from .frontend import ID, LOC, Router
from .state import Store


@dataclass(frozen=True)
class Event:
    """One prediction request as the platform's metrics see it."""

    at: float  # time.time()
    endpoint_id: str
    deployed_model_id: str
    code: int
    latency_ms: float


@dataclass
class Stats:
    """Every recorded prediction event, and the injected error rates."""

    events: list[Event] = field(default_factory=list)
    error_rates: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, endpoint_id: str, deployed_model_id: str) -> list[Event]:
        with self.lock:
            return [e for e in self.events
                    if (e.endpoint_id, e.deployed_model_id) == (endpoint_id, deployed_model_id)]


class Prediction:
    """The PredictionService routes."""

    def __init__(self, store: Store, endpoints: Endpoints, stats: Stats):
        self.store = store
        self.endpoints = endpoints
        self.stats = stats
        self._random = random.Random()

    def register(self, r: Router) -> None:
        one = rf"{LOC}/endpoints/(?P<id>{ID})"
        r.add("POST", rf"/v1/{one}:predict", "Predict", "aiplatform.endpoints.predict", self.predict)
        r.add("POST", rf"/v1/{one}:rawPredict", "RawPredict", "aiplatform.endpoints.predict",
              self.raw_predict)

    def _route(self, g: dict[str, str]) -> tuple[dict[str, Any], Any]:
        """The deployed model (and its replica) this request goes to, by traffic weight."""
        with self.store.lock:
            endpoint = self.endpoints.endpoint(g)
            split = {k: int(v) for k, v in endpoint["trafficSplit"].items() if int(v) > 0}
            if not split:
                raise ApiError("FAILED_PRECONDITION",
                               f"Endpoint {endpoint['name']} has no deployed model with traffic.")
            ids = sorted(split)
            chosen = self._random.choices(ids, weights=[split[i] for i in ids])[0]
            deployed = next(d for d in endpoint["deployedModels"] if d["id"] == chosen)
            return dict(deployed), self.endpoints.replicas.get(chosen)

    def _forward(self, g: dict[str, str], data: bytes, content_type: str) -> tuple[dict[str, Any], int, bytes]:
        deployed, replica = self._route(g)
        started = time.perf_counter()
        rate = self.stats.error_rates.get((g["id"], deployed["id"]), 0.0)
        if rate and self._random.random() < rate:
            code, reply = 500, b'{"error": "injected by the Vertex fake"}'
        elif replica is None:
            code, reply = 503, b'{"error": "no replica"}'
        else:
            code, reply = replica.post(data, content_type)
        self.stats.record(Event(time.time(), g["id"], deployed["id"], code,
                                (time.perf_counter() - started) * 1000.0))
        if code != 200:
            text = reply.decode(errors="replace")[:2000]
            status = BY_HTTP.get(str(code), "INVALID_ARGUMENT" if code < 500 else "INTERNAL")
            raise ApiError(status, f"The model server of deployed model {deployed['id']} answered "
                           f"{code}: {text}")
        return deployed, code, reply

    def predict(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if "instances" not in body:
            raise ApiError("INVALID_ARGUMENT", "PredictRequest.instances must be set.")
        payload = {k: body[k] for k in ("instances", "parameters") if k in body}
        deployed, _, reply = self._forward(g, json.dumps(payload).encode(), "application/json")
        try:
            answer = json.loads(reply)
        except ValueError as e:
            raise ApiError("INTERNAL", f"The model server answered invalid JSON: {e}") from None
        if not isinstance(answer, dict) or "predictions" not in answer:
            raise ApiError("INTERNAL", "The model server's answer has no \"predictions\".")
        with self.store.lock:
            model = self.endpoints.models.resolve(
                f"{deployed['model'].split('@')[0]}@{deployed['modelVersionId']}")
        return 200, {"predictions": answer["predictions"], "deployedModelId": deployed["id"],
                     "model": model["name"], "modelVersionId": deployed["modelVersionId"],
                     "modelDisplayName": model["displayName"]}

    def raw_predict(self, g: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        http_body = body.get("httpBody") or {}
        data = base64.b64decode(http_body.get("data", ""))
        _, _, reply = self._forward(g, data, http_body.get("contentType") or "application/json")
        return 200, {"contentType": "application/json", "data": base64.b64encode(reply).decode()}
