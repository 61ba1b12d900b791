"""The gateway's reverse proxy: `python -m mlform.providers.local.gateway.proxy DIR FD`.

Serves, on the listening socket it inherits as file descriptor FD:

    POST /predict   forwarded to one backend endpoint, chosen by weight, through its
                    provider's `invoke` (the proxy builds each backend's provider from
                    its type and configuration); a backend that fails is retried on
                    the others, so a client sees an error only when none answers
    GET  /health    {"status": "ok", "weights": {...}}
    GET  /-/stats   ?since=T: per backend, requests, errors and p99 latency since T
                    (`mlform.ml.serving.stats`), for judging a cutover step

The routing file (`routes.py`) is read again whenever it changes. Every forwarded
request's instances are logged (`requests.jsonl`), for the parity check of a later
cutover (`mlform.ml.gateway.parity`). The proxy ends itself once it is no longer its
gateway's (its directory removed, another proxy recorded in its place: `watchdog`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mlform.engine.provider import InvokeRequest, Provider, ResourceRef
from mlform.ml.gateway.parity import LOG_FILE
from mlform.ml.serving.parsing import BadRequest, json_object
from mlform.ml.serving.reqlog import JsonlLog
from mlform.ml.serving.stats import CLIENT_ERROR, ERROR, OK, RecentOutcomes
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import routes as routing
from . import watchdog

log = logging.getLogger("mlform.gateway")
TRACK = "backends"


class Proxy:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.outcomes = RecentOutcomes()
        self.requests = JsonlLog(self.directory / LOG_FILE, max_rows=10_000)
        self._routes: routing.Routes | None = None
        self._stamp: int | None = None
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()

    def routes(self) -> routing.Routes:
        path = self.directory / routing.ROUTES_FILE
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if self._routes is None or stamp != self._stamp:
            found = routing.read(self.directory)
            if found is not None:
                self._routes, self._stamp = found, stamp
        if self._routes is None:
            raise RuntimeError(f"{path} is missing or unreadable")
        return self._routes

    def provider(self, routes: routing.Routes, backend: dict[str, Any]) -> Provider:
        from mlform.engine.registry import make_provider

        key = json.dumps([backend["provider"], backend["provider_type"], backend["config"]],
                         sort_keys=True)
        with self._lock:
            if key not in self._providers:
                self._providers[key] = make_provider(
                    backend["provider_type"], backend["provider"], backend["config"],
                    routes.stack, Path(routes.stack_dir))
            return self._providers[key]

    def order(self, routes: routing.Routes) -> list[str]:
        """The backend to try first (by weight), then the others that get traffic, then
        those configured at no weight (still serving, mid-cutover): a fallback only."""
        live = [k for k, w in routes.weights.items() if w > 0 and k in routes.backends]
        rest = [k for k in routes.backends if k not in live]
        if not live:
            return rest
        first = self._rng.choices(live, weights=[routes.weights[k] for k in live])[0]
        return [first, *[k for k in live if k != first], *rest]

    async def predict(self, request: Request) -> JSONResponse:
        try:
            body = json_object(await request.body())
            instances = body.get("instances")
            if not isinstance(instances, list) or not instances:
                raise BadRequest('the body must be {"instances": [[...], ...]}')
        except BadRequest as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        routes = self.routes()
        last = "no backend is configured"
        for key in self.order(routes):
            backend = routes.backends[key]
            started = time.perf_counter()
            try:
                answer = await run_in_threadpool(self._invoke, routes, backend, instances)
            except Exception as e:  # noqa: BLE001 - a backend that raised did not answer
                answer = (None, 502, str(e))
            predictions, status, error = answer
            ms = 1000 * (time.perf_counter() - started)
            if error is None:
                self.outcomes.record(TRACK, key, ms, OK)
                self.requests.append({"t": time.time(), "instances": instances})
                return JSONResponse({"predictions": predictions,
                                     "endpoint": backend["resource"]})
            if 400 <= status < 500:
                self.outcomes.record(TRACK, key, ms, CLIENT_ERROR)
                return JSONResponse({"error": error}, status_code=status)
            self.outcomes.record(TRACK, key, ms, ERROR)
            log.warning("backend %s failed (%s); trying the next one", key, error)
            last = error
        return JSONResponse({"error": f"no backend answered: {last}"}, status_code=502)

    def _invoke(self, routes: routing.Routes, backend: dict[str, Any],
                instances: list) -> tuple[list | None, int, str | None]:
        outputs = backend.get("outputs") or {}
        resp = self.provider(routes, backend).invoke(InvokeRequest(
            resource=ResourceRef(backend["resource"], "endpoint", outputs.get("id")),
            outputs=outputs, instances=instances))
        return resp.predictions, resp.status, resp.error

    async def health(self, request: Request) -> JSONResponse:
        try:
            routes = self.routes()
        except RuntimeError as e:
            return JSONResponse({"status": "failed", "error": str(e)}, status_code=503)
        return JSONResponse({"status": "ok", "weights": routes.share()})

    async def stats(self, request: Request) -> JSONResponse:
        since = float(request.query_params.get("since", "0"))
        return JSONResponse(self.outcomes.since(since).get(TRACK, {}))


def build_app(directory: Path) -> Starlette:
    proxy = Proxy(directory)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        proxy.requests.close()  # what is queued reaches the log before the process ends

    return Starlette(routes=[Route("/predict", proxy.predict, methods=["POST"]),
                             Route("/health", proxy.health, methods=["GET"]),
                             Route("/-/stats", proxy.stats, methods=["GET"])],
                     lifespan=lifespan)


def main(argv: list[str]) -> int:
    import uvicorn

    from ..serving.server import UVICORN_SETTINGS

    directory, fd = Path(argv[0]), int(argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = socket.socket(fileno=fd)
    server = uvicorn.Server(uvicorn.Config(build_app(directory), **UVICORN_SETTINGS))

    def stop() -> None:
        server.should_exit = True  # uvicorn's own graceful shutdown, as on SIGTERM

    watchdog.start(directory, stop)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
