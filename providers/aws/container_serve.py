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
(`InvokedProductionVariant`). A body mlform refuses is raised with the words local
answers in its 400 as the inference toolkit's own error with status 400
(`sagemaker_inference.errors.BaseInferenceToolkitError`), which the toolkit answers as a
400; any other exception it answers as a 500, which the client sees as a ModelError.
The error is a ValueError too, and a plain ValueError where the toolkit is absent.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

# Inside the container this file is a top-level module beside the `mlform` package it
# ships with; imported as part of mlform (tests, moto) its folder must not shadow
# top-level names (it holds a `packaging.py`).
if not __package__:
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
        raise refused(f"send application/json, not {content_type}")
    raw = body if isinstance(body, bytes | bytearray) else str(body).encode()
    try:
        payload = json_object(bytes(raw))
        instances(payload)
        requested({"return": option(payload, "return", LABELS)})
        wants_explanation(payload)
    except BadRequest as e:
        raise refused(str(e)) from None
    return payload


def predict_fn(request, predictor):
    """Predictions, or with `"explain": true` occlusion attributions (at most
    `MAX_EXPLAINED` instances), as local's `/predict` and `/explain` answer them."""
    from mlform.ml.serving.answering import answer
    from mlform.ml.serving.parsing import BadRequest

    try:
        return answer(predictor, request, None, None).answer
    except BadRequest as e:
        raise refused(str(e)) from None


def output_fn(answer, accept):
    return json.dumps(answer), "application/json"


def refused(message: str) -> ValueError:
    """The error for a body mlform refuses: a 400 with `message` to the inference toolkit
    that serves this script."""
    return _refusal_class()(message)


@functools.cache
def _refusal_class() -> type[ValueError]:
    try:
        from sagemaker_inference.errors import BaseInferenceToolkitError
    except ImportError:
        return ValueError

    class Refused(BaseInferenceToolkitError, ValueError):
        def __init__(self, message: str):
            super().__init__(400, message, "Bad Request")

        def __str__(self) -> str:
            return str(self.message)

    return Refused
