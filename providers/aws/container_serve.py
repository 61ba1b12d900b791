"""Inference script of mlform's SageMaker models (runs inside the PyTorch inference
container, which calls these four functions); never imported by mlform itself.

Requests and answers are those of the local provider's `/predict`:
`{"instances": [[...], ...]}` or objects by feature name → `{"predictions": [...]}`, and
with `"return": "probabilities"` the class probabilities too (`mlform.ml.serving.scores`).
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
    """{"instances", "return"}: the rows and the output asked for."""
    from mlform.ml.serving.parsing import BadRequest
    from mlform.ml.serving.scores import requested

    if content_type != "application/json":
        raise ValueError(f"send application/json, not {content_type}")
    payload = json.loads(body)
    if not isinstance(payload, dict) or "instances" not in payload:
        raise ValueError('the body must be {"instances": [...]}')
    try:
        output = requested(payload)
    except BadRequest as e:
        raise ValueError(str(e)) from None
    return {"instances": payload["instances"], "return": output}


def predict_fn(request, predictor):
    from mlform.ml.serving.scores import predict

    predictions, probabilities = predict(predictor, request["instances"], request["return"])
    if probabilities is None:
        return {"predictions": predictions}
    return {"predictions": predictions, "probabilities": probabilities,
            "classes": predictor.classes}


def output_fn(answer, accept):
    return json.dumps(answer), "application/json"
