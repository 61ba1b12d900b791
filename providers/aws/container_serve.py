"""Inference script of mlform's SageMaker models (runs inside the PyTorch inference
container, which calls these four functions); never imported by mlform itself.

SageMaker has one data path, `/invocations` (InvokeEndpoint), so the body says what it
asks for, as on every one-route server (`mlform.ml.serving.answering`):

    {"instances": [...]}                              -> {"predictions": [...]}  (/predict)
    {"instances": [...], "return": "probabilities"}   -> + "probabilities", "classes"
    {"instances": [...], "explain": true}             -> local's `POST /explain` answer:
                                                         {"explanations", "method",
                                                          "baseline", "variant", "model"}

Instances are lists in feature order or objects by feature name. The container does
not know which production variant or model version it serves, so an explanation's
`variant` and `model` are null: InvokeEndpoint names the variant that answered
(`InvokedProductionVariant`). A body mlform refuses is a ValueError with the words
local answers in its 400.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def model_fn(model_dir):
    from mlform.ml.artifact import load_predictor

    return load_predictor(model_dir)


def input_fn(body, content_type):
    """The request body as a JSON object, its instances and options checked."""
    from mlform.ml.serving.answering import option, wants_explanation
    from mlform.ml.serving.parsing import BadRequest, instances, json_object
    from mlform.ml.serving.scores import LABELS, requested

    if content_type != "application/json":
        raise ValueError(f"send application/json, not {content_type}")
    raw = body if isinstance(body, bytes | bytearray) else str(body).encode()
    try:
        payload = json_object(bytes(raw))
        instances(payload)
        requested({"return": option(payload, "return", LABELS)})
        wants_explanation(payload)
    except BadRequest as e:
        raise ValueError(str(e)) from None
    return payload


def predict_fn(request, predictor):
    """Predictions, or with `"explain": true` occlusion attributions (at most
    `MAX_EXPLAINED` instances), as local's `/predict` and `/explain` answer them."""
    from mlform.ml.serving.answering import answer
    from mlform.ml.serving.parsing import BadRequest

    try:
        return answer(predictor, request, None, None).answer
    except BadRequest as e:
        raise ValueError(str(e)) from None


def output_fn(answer, accept):
    return json.dumps(answer), "application/json"
