"""`POST /explain`: why the endpoint answers what it answers, per instance.

    {"instances": [[...], ...]}  ->  {"explanations": [{"prediction", "score",
                                      "attributions": {feature: change}}, ...],
                                      "method": "occlusion", "baseline": "training means",
                                      "variant", "model"}

Occlusion against the training means (`mlform.ml.explain.occlusion`): one forward pass
of instances × (features + 1) rows, so at most `MAX_EXPLAINED` instances a request.
The variant that explains is drawn as a prediction's would be (by weight, the canary's
share included) and named in the answer. Explanations are not predictions: they are
neither logged for monitors nor counted in the variant's metrics or rollout evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlform.ml.explain import MAX_EXPLAINED, occlusion
from mlform.ml.serving.parsing import BadRequest, instances, json_object
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
        rows = instances(json_object(await request.body()))
    except BadRequest as e:
        return JSONResponse({"error": str(e)}, status_code=400)
    if len(rows) > MAX_EXPLAINED:
        return JSONResponse({"error": f"at most {MAX_EXPLAINED} instances can be explained "
                                      f"in one request; this one has {len(rows)}"},
                            status_code=400)
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
        return JSONResponse({"error": f"variant '{route.variant}' cannot explain these "
                                      f"instances: {e}"}, status_code=400)
    return JSONResponse({"explanations": found, "method": "occlusion",
                         "baseline": "training means", "variant": route.variant,
                         "model": route.spec.model})
