"""The endpoint's web app: prediction, health, metrics, feedback, and control routes.

Public routes:
    POST /predict   {"instances": [[...], ...]} -> {"predictions", "variant", "id"}
                    or {"entities": [key, ...]} with a feature_view (online lookup)
    GET  /health    200 with the variants served; 503 while loading or when a model
                    failed to load
    GET  /metrics   Prometheus text format
    POST /feedback  {"id": request_id, "labels": [...]}: ground truth, appended to the
                    feedback log whatever the id (requests are sampled and the server
                    may have restarted since, so an id unknown here is not an error)

Control routes, for the provider (the server listens on 127.0.0.1 only), each
asking for `authorization: Bearer <control token>` (401 otherwise):
    GET  /-/config  the config being served
    POST /-/config  serve a new config: its models are loaded beside the current ones,
                    then traffic moves at once; on failure nothing changes (422)
    GET  /-/stats?since=<unix time>  requests, errors and p99 latency per variant set
                    and variant since that time

Every error is a JSON object `{"error": message}`; tracebacks go to server.log only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import random
import threading
import time
from pathlib import Path

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import CONFIG_FILE, ServingConfig, write_config
from .loader import ModelStore, choose_device, import_torch
from .metrics import CONTENT_TYPE, ServingMetrics
from .reqlog import FEEDBACK_FILE, REQUESTS_FILE, JsonlLog, request_line
from .router import Router
from .stats import RecentOutcomes

log = logging.getLogger("mlform.serving")

LOADING, READY, FAILED = "loading", "ok", "failed"


class BadRequest(Exception):
    """The request cannot be served as sent; the message says why."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class ServingApp:
    def __init__(self, config: ServingConfig, directory: Path, control_token: str,
                 seed: int = 0):
        self.directory = Path(directory)
        self._authorization = f"Bearer {control_token}".encode()
        self.config = config
        self._rng = random.Random(seed)
        self.router = Router(config, self._rng)
        self.models = ModelStore()
        self.metrics = ServingMetrics()
        self.outcomes = RecentOutcomes()
        self.device = "cpu"
        self.status = LOADING
        self.failure = ""
        self._sampler = random.Random()
        self._ids = RequestIds()
        self._control = asyncio.Lock()
        self.requests_log: JsonlLog | None = None
        self.feedback_log: JsonlLog | None = None

    # --- lifecycle ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        self.requests_log = JsonlLog(self.directory / REQUESTS_FILE, self.config.max_rows,
                                     self.config.max_bytes, to_line=request_line)
        self.feedback_log = JsonlLog(self.directory / FEEDBACK_FILE, self.config.max_rows,
                                     self.config.max_bytes)
        # loading runs beside the server so /health can say "loading" meanwhile
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._load_initial, args=(loop,), name="load-models",
                         daemon=True).start()
        try:
            yield
        finally:
            self.requests_log.close()
            self.feedback_log.close()

    def _load_initial(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            import_torch()
            self.device = choose_device(self.config.gpus)
            self.models.load(self.config.model_paths(), self.device)
        except Exception as e:  # reported by /health; the process stays up to say so
            log.exception("loading the models failed")
            self.failure, self.status = str(e), FAILED
            return
        loop.call_soon_threadsafe(self._ready)

    def _ready(self) -> None:
        self._apply_threads(self.config)
        self.metrics.set_traffic(self.config.traffic())
        self.status = READY
        log.info("serving %s", self.config.traffic())

    @staticmethod
    def _apply_threads(config: ServingConfig) -> None:
        """Torch's thread count is per thread: call it on the thread that predicts (the
        event loop's)."""
        import torch

        torch.set_num_threads(config.threads)

    # --- public routes --------------------------------------------------------

    async def predict(self, scope, receive, send) -> None:
        """POST /predict, as a plain ASGI handler: it is the one route on the hot path,
        and going without a framework request and response object per call saves
        about as much as the routing, metrics and rollout statistics cost."""
        raw = await _read_body(receive)
        if raw is None:  # the client went away before sending its body
            return
        start = time.perf_counter()
        try:
            body = _json_object(raw)
            instances = self._looked_up(body) if "entities" in body else _instances(body)
        except BadRequest as e:
            self.metrics.rejected.inc()
            return await _send_error(send, 400, str(e))
        if self.status != READY:
            return await _send_error(send, 503, self._not_ready())
        route = self.router.pick()
        predictor = self.models[route.spec.model]
        try:
            predictions = predictor.predict(instances)
            status, failure = 200, ""
        except (ValueError, TypeError, KeyError) as e:
            status, failure = 400, f"variant '{route.variant}' cannot predict these " \
                                   f"instances: {e}"
        except Exception as e:  # answered as a 500; the traceback goes to server.log
            log.exception("variant %s failed", route.variant)
            status, failure = 500, f"variant '{route.variant}' failed: {type(e).__name__}: {e}"
        seconds = time.perf_counter() - start
        ok = status == 200
        now = time.time()
        self.metrics.record(route.variant, route.spec.model, seconds, len(instances), ok)
        self.outcomes.record(route.track, route.variant, seconds * 1000.0, ok, now)
        if not ok:
            return await _send_error(send, status, failure)
        rid = self._ids.next()
        predicted = _encode(predictions)
        await _send_json(send, 200, f'{{"predictions":{predicted},'
                                    f'"variant":{_encode(route.variant)},"id":"{rid}"}}')
        sampled = self._sampler.random() < self.config.sample_rate
        # the log keeps the raw body when it holds just the rows (see `request_line`)
        logged = (None, raw) if len(body) == 1 and isinstance(instances[0], list) \
            else (instances, None)
        if sampled:
            self.requests_log.append((now, rid, route.variant, route.spec.model,
                                      predictor.features, *logged, predicted))
        if route.shadows:
            # the answer is sent: the caller never waits on a shadow
            await self._shadow(route.shadows, rid, instances, logged if sampled else None)

    def _looked_up(self, body: dict) -> list[dict]:
        """Rows for `{"entities": [...]}`: the feature view's latest values for each key,
        from the same online store the offline training data was materialised with."""
        from ..features.online import online_features

        if not self.config.online_store:
            raise BadRequest("this endpoint has no feature_view: send 'instances'")
        keys = body["entities"]
        if not isinstance(keys, list) or not keys or \
                not all(isinstance(k, str | int) and not isinstance(k, bool) for k in keys):
            raise BadRequest("'entities' must be a non-empty list of entity keys")
        rows = online_features(self.config.online_store, keys)
        unknown = [k for k, row in zip(keys, rows, strict=True) if row["event_time"] is None]
        if unknown:
            raise BadRequest(f"no features for entit{'y' if len(unknown) == 1 else 'ies'} "
                             f"{', '.join(map(str, unknown[:5]))} in the online store")
        return rows

    async def _shadow(self, shadows, rid: str, instances: list, logged: tuple | None) -> None:
        """`logged` is what the request log keeps of the request, None when not sampled."""
        for name, spec in shadows:
            start = time.perf_counter()
            try:
                predictor = self.models[spec.model]
                predicted = _encode(predictor.predict(instances))
            except Exception:  # a shadow's failure only shows in its metrics and the log
                log.exception("shadow variant %s failed", name)
                self.metrics.errors.labels(name, spec.model).inc()
                continue
            self.metrics.shadow.labels(name, spec.model).inc()
            self.metrics.latency.labels(name, spec.model).observe(time.perf_counter() - start)
            if logged is not None:
                self.requests_log.append((time.time(), rid, name, spec.model,
                                          predictor.features, *logged, predicted))

    async def health(self, _request: Request) -> Response:
        if self.status != READY:
            return JSONResponse({"status": self.status, "error": self._not_ready()},
                                status_code=503)
        return JSONResponse({
            "status": READY, "device": self.device, "traffic": self.config.traffic(),
            "variants": _described(self.config.stable),
            "canary": _described(self.config.canary) if self.config.canary else None,
            "canary_percent": self.config.canary_percent, "models": self.models.loaded(),
        })

    async def metrics_text(self, _request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)

    async def feedback(self, request: Request) -> Response:
        try:
            body = _json_object(await request.body())
        except BadRequest as e:
            return _error(400, str(e))
        rid, labels = body.get("id"), body.get("labels")
        if not isinstance(rid, str) or not rid:
            return _error(400, "'id' must be the id of a prediction response (a string)")
        if not isinstance(labels, list) or not labels:
            return _error(400, "'labels' must be a non-empty list: the true value of each "
                               "instance of that request, in order")
        self.feedback_log.append({"t": time.time(), "id": rid, "labels": labels})
        return JSONResponse({"accepted": True, "id": rid}, status_code=202)

    def _not_ready(self) -> str:
        if self.status == FAILED:
            return self.failure
        return "the models are still loading"

    # --- control routes -------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, self._authorization)

    async def get_config(self, _request: Request) -> Response:
        return Response(self.config.model_dump_json(), media_type="application/json")

    async def put_config(self, request: Request) -> Response:
        try:
            new = ServingConfig.model_validate_json(await request.body())
        except ValidationError as e:
            return _error(400, f"invalid config: {e}")
        if new.endpoint != self.config.endpoint:
            return _error(400, f"this server serves endpoint '{self.config.endpoint}', "
                               f"not '{new.endpoint}'")
        async with self._control:
            if self.status == LOADING:
                return _error(503, self._not_ready())
            try:
                await run_in_threadpool(self.models.load, new.model_paths(), self.device)
            except ValueError as e:
                return _error(422, str(e))
            self._apply_threads(new)
            self.config = new
            # one generator for the server's life: the split stays reproducible
            self.router = Router(new, self._rng)
            self.status, self.failure = READY, ""
            for kept in (self.requests_log, self.feedback_log):
                kept.max_rows, kept.max_bytes = new.max_rows, new.max_bytes
            self.models.keep_only(set(new.model_paths()))
            self.metrics.set_traffic(new.traffic())
            await run_in_threadpool(write_config, self.directory / CONFIG_FILE, new)
        log.info("now serving %s (%g%% on the canary variants)", new.traffic(),
                 new.canary_percent if new.canary else 0)
        return await self.health(request)

    async def stats(self, request: Request) -> Response:
        try:
            since = float(request.query_params.get("since", "0"))
        except ValueError:
            return _error(400, "'since' must be a unix time in seconds")
        return JSONResponse({"since": since, "now": time.time(),
                             "tracks": self.outcomes.since(since)})


class RequestIds:
    """Request ids: 32 hex digits, a random half fixed for the server's life and a
    counter. Unique across restarts as uuid4 is, at a tenth of its cost."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = 0

    def next(self) -> str:
        self._count += 1
        return f"{self._prefix}{self._count:016x}"


_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                           separators=(",", ":")).encode
"""JSON text as Starlette's JSONResponse writes it (NaN is refused, not sent)."""


async def _read_body(receive) -> bytes | None:
    """The request body, or None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send_json(send, status: int, text: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or ())]})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send, status: int, message: str) -> None:
    await _send_json(send, status, _encode({"error": message}))


def _described(variants) -> dict:
    return {name: {"model": v.model, "weight": v.weight, "shadow": v.shadow}
            for name, v in variants.items()}


def _json_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _instances(body: dict) -> list:
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list of instances, each a list of "
                         "feature values or an object keyed by feature name")
    return instances


async def _internal_error(_request: Request, exc: Exception) -> Response:
    """Whatever escaped a route: a JSON answer; the traceback goes to server.log."""
    log.error("unhandled error", exc_info=exc)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


class EndpointServer:
    """The ASGI app a server runs: `POST /predict` goes straight to the serving app,
    everything else (and the lifespan) through Starlette's routing."""

    def __init__(self, serving: ServingApp, routes: Starlette):
        self.serving = serving
        self.routes = routes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict":
            return await self.routes(scope, receive, send)
        if scope["method"] != "POST":
            return await _send_json(send, 405, _encode({"error": "send POST /predict"}),
                                    [(b"allow", b"POST")])
        answered = False

        async def tracked(message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        try:
            await self.serving.predict(scope, receive, tracked)
        except Exception as e:
            log.error("unhandled error", exc_info=e)
            if not answered:
                await _send_error(send, 500, f"internal error: {type(e).__name__}: {e}")


def _control(serving: ServingApp, route):
    """`route`, answered only to a caller that sends the control token."""

    async def guarded(request: Request) -> Response:
        if not serving.authorized(request):
            return _error(401, "control routes need 'authorization: Bearer <token>' with "
                               "the token in the endpoint's control.token")
        return await route(request)

    return guarded


def build_app(config: ServingConfig, directory: Path, control_token: str,
              seed: int = 0) -> EndpointServer:
    if not control_token:
        raise ValueError("a server needs a control token")
    serving = ServingApp(config, directory, control_token, seed)
    routes = Starlette(
        routes=[
            Route("/health", serving.health, methods=["GET"]),
            Route("/metrics", serving.metrics_text, methods=["GET"]),
            Route("/feedback", serving.feedback, methods=["POST"]),
            Route("/-/config", _control(serving, serving.get_config), methods=["GET"]),
            Route("/-/config", _control(serving, serving.put_config), methods=["POST"]),
            Route("/-/stats", _control(serving, serving.stats), methods=["GET"]),
        ],
        lifespan=serving.lifespan,
        exception_handlers={Exception: _internal_error},
    )
    return EndpointServer(serving, routes)
