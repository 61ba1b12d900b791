"""The endpoint's web app: prediction, health, metrics, feedback, and control routes.

Public routes:
    POST /predict   {"instances": [[...], ...]} -> {"predictions", "variant", "id"}
                    or {"entities": [key, ...]} with a feature_view (online lookup)
    GET  /health    200 with the variants served; 503 while loading or when a model
                    failed to load
    GET  /metrics   Prometheus text format
    POST /predict   with "return": "probabilities": the class probabilities too
                    (`mlform.ml.serving.scores`)
    POST /explain   {"instances": [...]} -> {"explanations", "method", "variant"}
                    (`explain`)
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

Every error is a JSON object `{"error": message}`, 404 and 405 included (and, through
`protocol`, the server's own answers to malformed HTTP); tracebacks go to server.log
only. A request whose body is larger than `limits.max_body_bytes` is answered 413,
one whose body does not arrive within `limits.body_timeout` 408.

Who is at fault decides how a failed prediction counts (`stats`): instances no
variant can take (wrong width, wrong types) are the client's (400, a client
error, no evidence against the variant); a model that raises, answers what JSON
cannot hold, or refuses instances the stable variants accept is the variant's
(500, an error that may roll a canary back).

Large requests (bodies over `OFFLOAD_BYTES`) are parsed and scored on worker
threads so that `/health` and small requests keep answering meanwhile; small ones
stay on the event loop, where they cost least.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import random
import threading
import time
from pathlib import Path

import anyio
from mlform.ml.serving import scores as _scores
from mlform.ml.serving.metrics import CONTENT_TYPE, ServingMetrics
from mlform.ml.serving.parsing import (
    BadRequest,
    RequestIds,
    experiment_key,
    feedback_entry,
    feedback_problem,
)
from mlform.ml.serving.parsing import encode as _encode
from mlform.ml.serving.parsing import instances as _instances
from mlform.ml.serving.parsing import json_object as _json_object
from mlform.ml.serving.reqlog import FEEDBACK_FILE, REQUESTS_FILE, JsonlLog, request_line
from mlform.ml.serving.stats import CLIENT_ERROR, ERROR, OK, RecentOutcomes
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import CONFIG_FILE, ServingConfig, write_config
from .explain import explain_route
from .loader import ModelStore, choose_device, import_torch
from .router import CANARY, Router

log = logging.getLogger("mlform.serving")

LOADING, READY, FAILED = "loading", "ok", "failed"

OFFLOAD_BYTES = 64 * 2**10
"""Bodies larger than this are parsed and scored on a worker thread."""
OFFLOAD_THREADS = 4
"""Large requests scored at once; more wait their turn (off the event loop)."""
CLIENT_FAULTS = (ValueError, TypeError, KeyError, OverflowError)
"""What a predictor raises for instances it cannot take."""


class Rejected(Exception):
    """A request refused before its body was read whole (413, 408): the answer closes
    the connection, since the rest of the body is not wanted."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


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
        self._offload: anyio.CapacityLimiter | None = None
        self._torch_threads = threading.local()

    # --- lifecycle ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app):
        self.requests_log = JsonlLog(self.directory / REQUESTS_FILE, self.config.max_rows,
                                     self.config.max_bytes, to_line=request_line)
        self.feedback_log = JsonlLog(self.directory / FEEDBACK_FILE, self.config.max_rows,
                                     self.config.max_bytes)
        self._offload = anyio.CapacityLimiter(OFFLOAD_THREADS)
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
        self.metrics.set_traffic(self.config.traffic())
        self.status = READY
        log.info("serving %s", self.config.traffic())

    def _use_threads(self) -> None:
        """Torch's thread count is per thread: set it on each thread that predicts (the
        event loop's and the workers'), once per value."""
        threads = self.config.threads
        if getattr(self._torch_threads, "n", None) != threads:
            import torch

            torch.set_num_threads(threads)
            self._torch_threads.n = threads

    # --- public routes --------------------------------------------------------

    async def predict(self, scope, receive, send) -> None:
        """POST /predict, as a plain ASGI handler: it is the one route on the hot path,
        and going without a framework request and response object per call saves
        about as much as the routing, metrics and rollout statistics cost."""
        try:
            raw = await _read_body(receive)
        except Rejected as e:
            self.metrics.rejected.inc()
            return await _send_error(send, e.status, str(e), close=True)
        if raw is None:  # the client went away before sending its body
            return
        start = time.perf_counter()
        offload = len(raw) > OFFLOAD_BYTES
        try:
            body, instances = await self._off_loop(self._parse, raw) if offload \
                else self._parse(raw)
            output = _scores.requested(body) if "return" in body else _scores.LABELS
        except BadRequest as e:
            self.metrics.rejected.inc()
            return await _send_error(send, 400, str(e))
        if self.status != READY:
            return await _send_error(send, 503, self._not_ready())
        try:
            key = experiment_key(body, self.config.experiment.key) \
                if self.config.experiment else None
        except BadRequest as e:
            self.metrics.rejected.inc()
            return await _send_error(send, 400, str(e))
        route = self.router.pick(key)
        if instances is None:  # entities: looked up in the store of the variant that answers
            try:
                instances = self._looked_up(body, route.track)
            except BadRequest as e:
                self.metrics.rejected.inc()
                return await _send_error(send, 400, str(e))
        predictor = self.models[route.spec.model]
        outcome, status, answer, scored = \
            await self._off_loop(self._score, route, instances, output) if offload \
            else self._score(route, instances, output)
        seconds = time.perf_counter() - start
        now = time.time()
        self.metrics.record(route.variant, route.spec.model, seconds, len(instances), outcome)
        self.outcomes.record(route.track, route.variant, seconds * 1000.0, outcome, now)
        if outcome != OK:
            return await _send_error(send, status, answer)
        rid = self._ids.next()
        extra = _scores.answer_fields(scored, predictor.classes, _encode) if scored else ""
        await _send_json(send, 200, f'{{"predictions":{answer}{extra},'
                                    f'"variant":{_encode(route.variant)},"id":"{rid}"}}')
        sampled = self._sampler.random() < self.config.sample_rate
        # the log keeps the raw body when it holds just the rows (see `request_line`)
        logged = (None, raw) if len(body) == 1 and isinstance(instances[0], list) \
            else (instances, None)
        if sampled:
            self.requests_log.append((now, rid, route.variant, route.spec.model,
                                      predictor.features, *logged, answer, scored))
        if route.shadows:
            # the answer is sent: the caller never waits on a shadow
            shadowed = (route.shadows, rid, instances, logged if sampled else None)
            if offload:
                await self._off_loop(self._shadow, *shadowed)
            else:
                self._shadow(*shadowed)

    async def _off_loop(self, function, *args):
        return await anyio.to_thread.run_sync(function, *args, limiter=self._offload)

    def _parse(self, raw: bytes) -> tuple[dict, list | None]:
        """The body and its instances (None for `entities`, looked up once the variant is
        picked); BadRequest says what is wrong with them."""
        body = _json_object(raw)
        return body, None if "entities" in body else _instances(body)

    def _score(self, route, instances: list,
               output: str = _scores.LABELS) -> tuple[int, int, str, str | None]:
        """(outcome, HTTP status, the predictions' JSON text or the error message, the
        class probabilities' JSON text when `output` asks for them)."""
        self._use_threads()
        try:
            predictions, probabilities = _scores.predict(self.models[route.spec.model],
                                                         instances, output)
        except CLIENT_FAULTS as e:
            if route.track == CANARY and self._stable_accepts(instances):
                # the instances fit the endpoint's contract: the new variant broke it
                return ERROR, 500, (f"variant '{route.variant}' failed: it cannot predict "
                                    f"instances the endpoint's stable variants accept: {e}"), \
                    None
            return CLIENT_ERROR, 400, (f"variant '{route.variant}' cannot predict these "
                                       f"instances: {e}"), None
        except Exception as e:  # answered as a 500; the traceback goes to server.log
            log.exception("variant %s failed", route.variant)
            return ERROR, 500, f"variant '{route.variant}' failed: {type(e).__name__}: {e}", \
                None
        try:
            return OK, 200, _encode(predictions), \
                None if probabilities is None else _encode(probabilities)
        except (TypeError, ValueError) as e:  # NaN or a value JSON has no form for
            log.error("variant %s answered what JSON cannot hold: %s", route.variant, e)
            return ERROR, 500, (f"variant '{route.variant}' failed: its predictions are not "
                                f"JSON: {type(e).__name__}: {e}"), None

    def _stable_accepts(self, instances: list) -> bool:
        """Whether a stable variant takes these instances (only asked when a canary
        variant refused them: then it decides whose fault that was)."""
        for spec in self.config.stable.values():
            if spec.shadow or spec.weight == 0:
                continue
            try:
                self.models[spec.model].predict(instances)
                return True
            except Exception:  # noqa: S112 - refused here too: the client's fault
                continue
        return False

    def _looked_up(self, body: dict, track: str) -> list[dict]:
        """Rows for `{"entities": [...]}`: the feature view's latest values for each key,
        from the same online store the offline training data was materialised with (for
        a canary variant, the store of the version it was trained on)."""
        from ..features.online import online_features

        store = (self.config.canary_online_store or self.config.online_store) \
            if track == CANARY else self.config.online_store
        if not store:
            raise BadRequest("this endpoint has no feature_view: send 'instances'")
        keys = body["entities"]
        if not isinstance(keys, list) or not keys or \
                not all(isinstance(k, str | int) and not isinstance(k, bool) for k in keys):
            raise BadRequest("'entities' must be a non-empty list of entity keys")
        rows = online_features(store, keys)
        unknown = [k for k, row in zip(keys, rows, strict=True) if row["event_time"] is None]
        if unknown:
            raise BadRequest(f"no features for entit{'y' if len(unknown) == 1 else 'ies'} "
                             f"{', '.join(map(str, unknown[:5]))} in the online store")
        return rows

    def _shadow(self, shadows, rid: str, instances: list, logged: tuple | None) -> None:
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
        """Validated whole before the entry is appended: an entry is written only for
        a request answered 202."""
        try:
            body = _json_object(await request.body())
        except BadRequest as e:
            return _error(400, str(e))
        problem = feedback_problem(body)
        if problem:
            return _error(400, problem)
        answer = JSONResponse({"accepted": True, "id": body["id"]}, status_code=202)
        self.feedback_log.append(feedback_entry(body, time.time()))
        return answer

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
            since = math.nan
        if not math.isfinite(since):
            return _error(400, "'since' must be a unix time in seconds (a finite number)")
        return JSONResponse({"since": since, "now": time.time(),
                             "tracks": self.outcomes.since(since)})


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


async def _send_error(send, status: int, message: str, close: bool = False) -> None:
    """`close`: end the connection after the answer (a body left unread)."""
    await _send_json(send, status, _encode({"error": message}),
                     [(b"connection", b"close")] if close else None)


def _described(variants) -> dict:
    return {name: {"model": v.model, "weight": v.weight, "shadow": v.shadow}
            for name, v in variants.items()}


async def _internal_error(_request: Request, exc: Exception) -> Response:
    """Whatever escaped a route: a JSON answer; the traceback goes to server.log."""
    log.error("unhandled error", exc_info=exc)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    """Starlette's own answers (404 for an unknown route, 405 for a wrong method), as
    JSON like every other answer."""
    response = _error(exc.status_code, exc.detail)
    response.headers.update(exc.headers or {})
    return response


async def _rejected(_request: Request, exc: Rejected) -> Response:
    response = _error(exc.status, str(exc))
    response.headers["connection"] = "close"
    return response


class EndpointServer:
    """The ASGI app a server runs: `POST /predict` goes straight to the serving app,
    everything else (and the lifespan) through Starlette's routing. Every request's
    body is bounded here, in size and in time (`limits`)."""

    def __init__(self, serving: ServingApp, routes: Starlette):
        self.serving = serving
        self.routes = routes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.routes(scope, receive, send)
        limits = self.serving.config.limits
        declared = _content_length(scope)
        if declared is not None and declared > limits.max_body_bytes:
            self.serving.metrics.rejected.inc()
            return await _send_error(send, 413, _too_large(limits.max_body_bytes), close=True)
        receive = _bounded(receive, limits.max_body_bytes, limits.body_timeout)
        if scope["path"] != "/predict":
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


def _content_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses these before the app sees them
    return None


def _too_large(limit: int) -> str:
    return (f"the request body is larger than {limit} bytes (the endpoint's "
            "limits.max_body_bytes); send fewer instances per request")


def _bounded(receive, max_bytes: int, timeout: float):
    """`receive`, raising Rejected once the body passes `max_bytes` (a chunked body has
    no length to refuse up front) or has not arrived `timeout` seconds from now."""
    deadline = asyncio.get_running_loop().time() + timeout
    received = 0
    done = False

    async def bounded_receive() -> dict:
        nonlocal received, done
        if done:  # after the body: waiting for a disconnect, unbounded
            return await receive()
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise Rejected(408, f"the request body did not arrive within {timeout:g}s (the "
                                "endpoint's limits.body_timeout)") from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise Rejected(413, _too_large(max_bytes))
            done = not message.get("more_body", False)
        return message

    return bounded_receive


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
            Route("/explain", explain_route(serving), methods=["POST"]),
            Route("/-/config", _control(serving, serving.get_config), methods=["GET"]),
            Route("/-/config", _control(serving, serving.put_config), methods=["POST"]),
            Route("/-/stats", _control(serving, serving.stats), methods=["GET"]),
        ],
        lifespan=serving.lifespan,
        exception_handlers={Exception: _internal_error, HTTPException: _http_error,
                            Rejected: _rejected},
    )
    return EndpointServer(serving, routes)
