"""`POST /explain` on the local server: why the endpoint answers what it answers, per
instance, in the shape every provider's server answers (`mlform.ml.serving.explaining`).

Occlusion against the training means (`mlform.ml.explain.occlusion`), computed on a
worker thread. The variant that explains is drawn as a prediction's would be (by weight,
the canary's share included) and named in the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlform.ml.explain import occlusion
from mlform.ml.serving.explaining import answer, cannot_explain, requested_rows
from mlform.ml.serving.parsing import BadRequest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from .app import ServingApp


def explain_route(serving: ServingApp):
    """The route's handler for `serving`."""

    async def route(request: Request) -> Response:
        return await explain(serving, request)

    return route


async def explain(serving: ServingApp, request: Request) -> Response:
    try:
        rows = requested_rows(await request.body())
    except BadRequest as e:
        return JSONResponse({"error": str(e)}, status_code=400)
    if serving.status != "ok":
        return JSONResponse({"error": serving._not_ready()}, status_code=503)
    route = serving.router.pick()
    predictor = serving.models[route.spec.model]

    def explained():
        serving._use_threads()
        return occlusion(predictor, rows)

    try:
        found = await run_in_threadpool(explained)
    except (ValueError, TypeError) as e:
        return JSONResponse({"error": cannot_explain(route.variant, e)}, status_code=400)
    return JSONResponse(answer(found, route.variant, route.spec.model))
