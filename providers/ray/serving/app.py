"""The deployments Ray Serve runs for an endpoint: the router (the endpoint's ingress)
and one variant deployment per model.

The router answers the same HTTP API as the local provider's server, with the same
shapes (`mlform.ml.serving`):

    POST /predict   {"instances": [[...], ...]} -> {"predictions", "variant", "id"};
                    with "return": "probabilities", the class probabilities and classes
                    too (`mlform.ml.serving.scores`); with the endpoint's experiment key
                    in the body, answered by the variant the key is assigned to
    POST /explain   {"instances": [...]} -> {"explanations", "method", "baseline",
                    "variant", "model"} (`mlform.ml.serving.explaining`)
    GET  /health    200 with the variants served and each one's device; 503 when a
                    variant does not answer
    GET  /metrics   Prometheus text format (the local server's series)
    POST /feedback  {"id": request_id, "labels": [...]} -> 202, appended to the feedback log
    GET  /-/stats?since=<unix time>   requests, errors and p99 latency per variant set and
                    variant, for the provider judging a rollout step; it asks for
                    `authorization: Bearer <token>`, the token in the endpoint's folder on
                    the shared storage (mode 0600), which only the provider reads

It splits requests by the weights of its routing table (`split`), which arrives as the
deployment's `user_config`: a new table is applied to the running router in place.
Requests are logged to `requests.jsonl` (with `"scores"` when they asked for
probabilities) and feedback to `feedback.jsonl` in the endpoint's folder on the shared
storage, in the local provider's row format, which monitors and experiment verdicts
read. One router replica writes them.

A variant's deployment loads the artifact with `mlform.ml.artifact` and answers
`predict(instances, output)` with the predictions' JSON text (and the probabilities'),
or with who is at fault: the client (instances no model takes: 400) or the variant
(500, evidence against it); `explain(instances)` with occlusion explanations
(`mlform.ml.explain.occlusion`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any

from mlform.ml.serving import explaining
from mlform.ml.serving import scores as _scores
from mlform.ml.serving.metrics import CONTENT_TYPE, ServingMetrics
from mlform.ml.serving.parsing import (
    BadRequest,
    RequestIds,
    encode,
    experiment_key,
    feedback_entry,
    feedback_problem,
    json_object,
)
from mlform.ml.serving.parsing import instances as parse_instances
from mlform.ml.serving.reqlog import FEEDBACK_FILE, REQUESTS_FILE, JsonlLog, request_line
from mlform.ml.serving.stats import CLIENT_ERROR, ERROR, OK, RecentOutcomes
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .split import CANARY, Route, Split, traffic

log = logging.getLogger("ray.serve")

TOKEN_FILE = "control.token"
CLIENT_FAULTS = (ValueError, TypeError, KeyError, OverflowError)
"""What a predictor raises for instances it cannot take."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@serve.deployment(name="variant")
class VariantModel:
    """One model version, loaded from the shared storage."""

    def __init__(self, variant: str, model: str, path: str, gpus: int = 0, threads: int = 1):
        import torch
        from mlform.ml.artifact import load_predictor

        torch.set_num_threads(max(1, int(threads)))
        self.model = model
        self.device, self.device_note = "cpu", ""
        if gpus > 0 and torch.cuda.is_available():
            self.device = "cuda"
        elif gpus > 0:
            self.device_note = (f"compute.gpus is {gpus} but the replica sees no GPU: "
                                "serving on the CPU")
            log.warning(self.device_note)
        self.predictor = load_predictor(path, device=self.device)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "device": self.device, "device_note": self.device_note,
                "features": self.predictor.features}

    def predict(self, instances: list, output: str = _scores.LABELS) -> dict[str, Any]:
        """{"predictions": JSON text, "features"[, "probabilities": JSON text, "classes"]}
        or {"client_error"} or {"error"}; probabilities when `output` asks for them of a
        classifier (`mlform.ml.serving.scores`)."""
        try:
            predictions, probabilities = _scores.predict(self.predictor, instances, output)
        except CLIENT_FAULTS as e:
            return {"client_error": str(e)}
        except Exception as e:  # the variant's failure: answered 500 by the router
            log.exception("variant failed")
            return {"error": f"{type(e).__name__}: {e}"}
        try:
            answer = {"predictions": encode(predictions), "features": self.predictor.features}
            if probabilities is not None:
                answer |= {"probabilities": encode(probabilities),
                           "classes": list(self.predictor.classes or ())}
            return answer
        except (TypeError, ValueError) as e:  # NaN or a value JSON has no form for
            return {"error": f"its predictions are not JSON: {type(e).__name__}: {e}"}

    def explain(self, instances: list) -> dict[str, Any]:
        """{"explanations"} or {"client_error"} (`mlform.ml.explain.occlusion`)."""
        from mlform.ml.explain import occlusion

        try:
            return {"explanations": occlusion(self.predictor, instances)}
        except (ValueError, TypeError) as e:
            return {"client_error": str(e)}


@serve.deployment(name="router")
class Router:
    def __init__(self, endpoint: str, directory: str, **_owner: Any):
        self.endpoint = endpoint
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        token_path = self.directory / TOKEN_FILE
        self._authorization = f"Bearer {token_path.read_text().strip()}".encode() \
            if token_path.is_file() else None
        self._rng = random.Random(0)
        self._sampler = random.Random()
        self._ids = RequestIds()
        self.metrics = ServingMetrics()
        self.outcomes = RecentOutcomes()
        self.split: Split | None = None
        self.experiment_key: str | None = None
        """The request body's field holding the experiment's key (None: no experiment)."""
        self.version = ""
        self.settings: dict[str, Any] = {}
        self._handles: dict[str, Any] = {}
        self.requests_log: JsonlLog | None = None
        self.feedback_log: JsonlLog | None = None

    def reconfigure(self, config: dict[str, Any]) -> None:
        """A new routing table and settings, applied to the running router in place."""
        experiment = config.get("experiment") or {}
        split = Split(config["routing"], self._rng, experiment.get("name"))
        max_rows, max_bytes = int(config["max_rows"]), int(config["max_bytes"])
        if self.requests_log is None:
            self.requests_log = JsonlLog(self.directory / REQUESTS_FILE, max_rows, max_bytes,
                                         to_line=request_line)
            self.feedback_log = JsonlLog(self.directory / FEEDBACK_FILE, max_rows, max_bytes)
        for kept in (self.requests_log, self.feedback_log):
            assert kept is not None
            kept.max_rows, kept.max_bytes = max_rows, max_bytes
        self.settings = config
        self.split, self.version = split, str(config.get("version", ""))
        self.experiment_key = experiment.get("key")
        self.metrics.set_traffic(traffic(config["routing"]))
        log.info("routing %s (version %s)", traffic(config["routing"]), self.version)

    def __del__(self) -> None:
        for kept in (self.requests_log, self.feedback_log):
            if kept is not None:
                kept.close()

    def _handle(self, app: str) -> Any:
        handle = self._handles.get(app)
        if handle is None:
            handle = self._handles[app] = serve.get_deployment_handle("variant", app_name=app)
        return handle

    async def __call__(self, request: Request) -> Response:
        path = request.scope["path"]
        root = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        path = "/" + path.strip("/")
        method = request.method
        routes = {("/predict", "POST"): self.predict, ("/explain", "POST"): self.explain,
                  ("/health", "GET"): self.health,
                  ("/metrics", "GET"): self.metrics_text, ("/feedback", "POST"): self.feedback,
                  ("/-/stats", "GET"): self.stats}
        route = routes.get((path, method))
        if route is not None:
            return await route(request)
        if any(p == path for p, _ in routes):
            return _error(405, f"method {method} not allowed on {path}")
        return _error(404, f"no route {path}: the endpoint answers /predict, /explain, "
                           "/health, /metrics and /feedback")

    # --- public routes ---------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        limit = int(self.settings.get("max_body_bytes") or 8 * 2**20)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            self.metrics.rejected.inc()
            return _error(413, _too_large(limit))
        raw = await request.body()
        if len(raw) > limit:
            self.metrics.rejected.inc()
            return _error(413, _too_large(limit))
        start = time.perf_counter()
        try:
            body = json_object(raw)
            if "entities" in body:
                raise BadRequest("this endpoint has no feature_view: send 'instances'")
            instances = parse_instances(body)
            output = _scores.requested(body) if "return" in body else _scores.LABELS
            key = experiment_key(body, self.experiment_key) if self.experiment_key else None
        except BadRequest as e:
            self.metrics.rejected.inc()
            return _error(400, str(e))
        if self.split is None:
            return _error(503, "the router has no routing table yet")
        route = self.split.pick(key)
        outcome, status, answer, result = await self._score(route, instances, output)
        seconds = time.perf_counter() - start
        now = time.time()
        self.metrics.record(route.variant, route.model, seconds, len(instances), outcome)
        self.outcomes.record(route.track, route.variant, seconds * 1000.0, outcome, now)
        if outcome != OK:
            return _error(status, answer)
        rid = self._ids.next()
        scored = result.get("probabilities")
        extra = _scores.answer_fields(scored, result.get("classes"), encode)
        text = (f'{{"predictions":{answer}{extra},"variant":{encode(route.variant)},'
                f'"id":"{rid}"}}')
        sampled = self._sampler.random() < float(self.settings.get("sample_rate", 1.0))
        logged = (None, raw) if len(body) == 1 and isinstance(instances[0], list) \
            else (instances, None)
        if sampled and self.requests_log is not None:
            self.requests_log.append((now, rid, route.variant, route.model,
                                      result["features"], *logged, answer, scored))
        if route.shadows:  # the answer is sent: the caller never waits on a shadow
            asyncio.get_running_loop().create_task(
                self._shadow(route, rid, instances, logged if sampled else None))
        return Response(text, media_type="application/json")

    async def _score(self, route: Route, instances: list,
                     output: str = _scores.LABELS) -> tuple[int, int, str, dict[str, Any]]:
        """(outcome, HTTP status, the predictions' JSON text or the error, the variant's
        answer: features, and probabilities and classes when `output` asked for them)."""
        try:
            handle = self._handle(route.app)
            # labels alone as before: a variant replica started by an earlier mlform
            # (Serve keeps it through an upgrade) takes no `output`
            result = await (handle.predict.remote(instances) if output == _scores.LABELS
                            else handle.predict.remote(instances, output))
        except Exception as e:  # the variant's replica is gone or failed: its fault
            log.exception("variant %s did not answer", route.variant)
            return ERROR, 500, (f"variant '{route.variant}' failed: "
                                f"{type(e).__name__}: {str(e)[:300]}"), {}
        if "predictions" in result:
            return OK, 200, result["predictions"], result
        if "error" in result:
            return ERROR, 500, f"variant '{route.variant}' failed: {result['error']}", {}
        problem = result["client_error"]
        if route.track == CANARY and await self._stable_accepts(instances):
            # the instances fit the endpoint's contract: the new variant broke it
            return ERROR, 500, (f"variant '{route.variant}' failed: it cannot predict "
                                f"instances the endpoint's stable variants accept: "
                                f"{problem}"), {}
        return CLIENT_ERROR, 400, (f"variant '{route.variant}' cannot predict these "
                                   f"instances: {problem}"), {}

    async def _stable_accepts(self, instances: list) -> bool:
        assert self.split is not None
        for route in self.split.stable_routes():
            try:
                result = await self._handle(route.app).predict.remote(instances)
            except Exception:  # noqa: S112 - not answering is no acceptance
                continue
            if "predictions" in result:
                return True
        return False

    async def _shadow(self, route: Route, rid: str, instances: list,
                      logged: tuple | None) -> None:
        for name, app, model in route.shadows:
            start = time.perf_counter()
            try:
                result = await self._handle(app).predict.remote(instances)
            except Exception:  # a shadow's failure only shows in its metrics and the log
                result = {"error": "no answer"}
            if "predictions" not in result:
                self.metrics.errors.labels(name, model).inc()
                continue
            self.metrics.shadow.labels(name, model).inc()
            self.metrics.latency.labels(name, model).observe(time.perf_counter() - start)
            if logged is not None and self.requests_log is not None:
                self.requests_log.append((time.time(), rid, name, model,
                                          result["features"], *logged, result["predictions"]))

    async def explain(self, request: Request) -> Response:
        """Occlusion explanations from the variant a prediction would be drawn from: not
        logged, and not counted in the variant's metrics or rollout evidence."""
        limit = int(self.settings.get("max_body_bytes") or 8 * 2**20)
        raw = await request.body()
        if len(raw) > limit:
            return _error(413, _too_large(limit))
        try:
            rows = explaining.requested_rows(raw)
        except BadRequest as e:
            return _error(400, str(e))
        if self.split is None:
            return _error(503, "the router has no routing table yet")
        route = self.split.pick()
        try:
            result = await self._handle(route.app).explain.remote(rows)
        except Exception as e:  # the variant's replica is gone or failed
            log.exception("variant %s did not explain", route.variant)
            return _error(500, f"variant '{route.variant}' failed: {type(e).__name__}: "
                               f"{str(e)[:300]}")
        if "client_error" in result:
            return _error(400, explaining.cannot_explain(route.variant, result["client_error"]))
        return JSONResponse(explaining.answer(result["explanations"], route.variant,
                                              route.model))

    async def health(self, _request: Request) -> Response:
        if self.split is None:
            return JSONResponse({"status": "loading", "error": "no routing table yet"},
                                status_code=503)
        table = self.split.table
        apps = {(n, v["app"]) for key in ("stable", "canary")
                for n, v in (table.get(key) or {}).items()}
        described: dict[str, Any] = {}
        try:
            answers = await asyncio.gather(*(self._handle(app).describe.remote()
                                             for _, app in sorted(apps)))
        except Exception as e:  # a variant that does not answer: the endpoint is unhealthy
            return JSONResponse({"status": "failed", "error": f"a variant does not answer: "
                                 f"{type(e).__name__}: {str(e)[:300]}",
                                 "version": self.version}, status_code=503)
        for (name, app), answer in zip(sorted(apps), answers, strict=True):
            described[app] = {"variant": name, **answer}
        return JSONResponse({
            "status": "ok", "traffic": traffic(table), "version": self.version,
            "variants": _described(table.get("stable") or {}),
            "canary": _described(table["canary"]) if table.get("canary") else None,
            "canary_percent": table.get("canary_percent", 0.0),
            "models": sorted({v["model"] for v in described.values()}),
            "devices": {a: {k: v[k] for k in ("variant", "device", "device_note")}
                        for a, v in described.items()},
            "now": time.time()})

    async def metrics_text(self, _request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)

    async def feedback(self, request: Request) -> Response:
        try:
            body = json_object(await request.body())
        except BadRequest as e:
            return _error(400, str(e))
        problem = feedback_problem(body)
        if problem:
            return _error(400, problem)
        if self.feedback_log is not None:
            self.feedback_log.append(feedback_entry(body, time.time()))
        return JSONResponse({"accepted": True, "id": body["id"]}, status_code=202)

    # --- the provider's route ------------------------------------------------------

    async def stats(self, request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if self._authorization is None or not hmac.compare_digest(given, self._authorization):
            return _error(401, "the statistics route needs 'authorization: Bearer <token>' "
                               f"with the token in the endpoint's {TOKEN_FILE}")
        try:
            since = float(request.query_params.get("since", "0"))
        except ValueError:
            since = math.nan
        if not math.isfinite(since):
            return _error(400, "'since' must be a unix time in seconds (a finite number)")
        return JSONResponse({"since": since, "now": time.time(), "version": self.version,
                             "pid": os.getpid(), "tracks": self.outcomes.since(since)})


def _described(variants: dict[str, Any]) -> dict[str, Any]:
    return {name: {"model": v["model"], "weight": v["weight"], "shadow": bool(v.get("shadow"))}
            for name, v in variants.items()}


def _too_large(limit: int) -> str:
    return (f"the request body is larger than {limit} bytes (the endpoint's "
            "limits.max_body_bytes); send fewer instances per request")


def router_app(args: dict[str, Any]) -> Any:
    """Serve's application builder for an endpoint's router (`apps.router_config`)."""
    return Router.bind(args["endpoint"], args["directory"])  # type: ignore[attr-defined]


def variant_app(args: dict[str, Any]) -> Any:
    """Serve's application builder for one variant (`apps.VariantApp.config`)."""
    return VariantModel.bind(  # type: ignore[attr-defined]
        args["variant"], args["model"], args["path"], int(args.get("gpus", 0)),
        int(args.get("threads", 1)))
