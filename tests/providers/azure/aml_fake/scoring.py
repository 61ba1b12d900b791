"""The scoring frontend: `POST /endpoints/<name>/score` (the endpoint's `scoringUri`), as the
managed online endpoint's router behaves.

Auth: Key endpoints take `Authorization: Bearer <primary or secondary key>`, AMLToken/AADToken
endpoints any bearer token; otherwise 401. Routing: the `azureml-model-deployment` header names
a deployment (any, even one with 0 traffic); otherwise a weighted draw over `traffic`; no
deployment with positive weight is 404. Mirror traffic: that percentage of the requests is also
sent to the mirror deployment, whose reply is dropped. Replies: the scoring host's 200 as is; a
non-200 from `run()` is 424 with `ms-azureml-model-error-statuscode`/`-reason`; a host slower
than `requestSettings.requestTimeout` is 408; `inject_errors` answers 500 itself.

Every request routed to a deployment (mirrored ones too) is recorded in `Stats`: the numbers
Azure Monitor's metrics report (metrics.py).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .endpoints import OnlineEndpoints
from .errors import AzureError
from .frontend import Request, Response, Router
from .state import PROVIDER

DEPLOYMENT_HEADER = "azureml-model-deployment"


@dataclass(frozen=True)
class Event:
    at: float          # time.time()
    endpoint: str
    deployment: str
    status: int
    latency_ms: float
    mirrored: bool


@dataclass
class Stats:
    events: list[Event] = field(default_factory=list)
    error_rates: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, endpoint: str, deployment: str | None = None) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e.endpoint == endpoint
                    and (deployment is None or e.deployment == deployment)]


def _timeout_seconds(duration: str | None) -> float:
    """An ISO 8601 duration like PT5S or PT0.5S or PT1M (what requestTimeout holds)."""
    match = re.fullmatch(r"PT(?:(\d+)M)?(?:([\d.]+)S)?", duration or "")
    if not match:
        return 5.0
    return int(match.group(1) or 0) * 60 + float(match.group(2) or 0) or 5.0


class Scoring:
    def __init__(self, endpoints: OnlineEndpoints, stats: Stats):
        self.endpoints = endpoints
        self.stats = stats
        self._random = random.Random()

    def register(self, router: Router) -> None:
        router.add("POST", r"/endpoints/(?P<endpoint>[^/]+)/score", "Score",
                   f"{PROVIDER}/workspaces/onlineEndpoints/score/action", self._score)

    def _score(self, request: Request) -> Response:
        name = request.groups["endpoint"]
        with self.endpoints.store.lock:
            endpoint = self.endpoints.endpoints.get(name)
            if endpoint is None:
                raise AzureError(404, "NotFound", f"Endpoint {name} not found.")
            props = endpoint.resource["properties"]
            auth = request.headers.get("authorization", "")
            token = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not token or (props["authMode"] == "Key" and token not in endpoint.keys):
                raise AzureError(401, "Unauthorized", "Unauthorized: the key or token is missing or invalid.")
            traffic = dict(props["traffic"])
            mirror = {k: v for k, v in props["mirrorTraffic"].items() if v > 0}
            ready = {n for n, d in endpoint.deployments.items() if d.host is not None}
        target = request.headers.get(DEPLOYMENT_HEADER)
        if target is not None:
            if target not in ready:
                raise AzureError(404, "NotFound", f"Deployment {target} not found or not ready "
                                 f"on endpoint {name}.")
        else:
            weighted = [(n, w) for n, w in traffic.items() if w > 0 and n in ready]
            if not weighted:
                raise AzureError(404, "NotFound",
                                 "No valid deployments to route to. Please check that the endpoint "
                                 "has at least one deployment with positive weight values or use a "
                                 "deployment specific header to route.")
            target = self._random.choices([n for n, _ in weighted], [w for _, w in weighted])[0]
            for mirror_name, percent in mirror.items():
                if mirror_name in ready and self._random.random() * 100 < percent:
                    threading.Thread(target=self._forward, args=(name, mirror_name, request.raw, True),
                                     daemon=True).start()
        return self._forward(name, target, request.raw, False)

    def _forward(self, endpoint_name: str, deployment_name: str, body: bytes,
                 mirrored: bool) -> Response:
        start = time.monotonic()
        status, reply, headers = self._call(endpoint_name, deployment_name, body)
        self.stats.record(Event(time.time(), endpoint_name, deployment_name, status,
                                (time.monotonic() - start) * 1000, mirrored))
        return Response(status, reply, {"azureml-model-deployment": deployment_name, **headers})

    def _call(self, endpoint_name: str, deployment_name: str,
              body: bytes) -> tuple[int, Any, dict[str, str]]:
        rate = self.stats.error_rates.get((endpoint_name, deployment_name), 0.0)
        if rate > 0 and self._random.random() < rate:
            return 500, {"error": {"code": "InternalServerError",
                                   "message": "injected failure (inject_errors)"}}, {}
        with self.endpoints.store.lock:
            endpoint = self.endpoints.endpoints.get(endpoint_name)
            deployment = endpoint.deployments.get(deployment_name) if endpoint else None
            host = deployment.host if deployment else None
            timeout = _timeout_seconds(
                deployment.resource["properties"]["requestSettings"].get("requestTimeout")
                if deployment else None)
        if host is None:
            return 503, {"error": {"code": "ServiceUnavailable",
                                   "message": f"Deployment {deployment_name} is not serving."}}, {}
        try:
            status, data = host.score(body, timeout)
        except TimeoutError:
            return 408, {"error": {"code": "RequestTimeout",
                                   "message": f"Request timed out after {timeout * 1000:.0f} ms."}}, {}
        if status == 200:
            return 200, data, {"Content-Type": "application/json"}
        reason = data.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return 424, {"message": "An unexpected error occurred in scoring script. Check the logs for more info.",
                     "model_status_code": status}, {
            "ms-azureml-model-error-statuscode": str(status),
            "ms-azureml-model-error-reason": json.dumps(reason[0])[1:-1][:200]}
