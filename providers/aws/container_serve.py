"""Inference script of mlform's SageMaker models (runs inside the PyTorch inference
container, which calls these four functions); never imported by mlform itself.

Requests and answers are those of the local provider's `/predict`:
`{"instances": [[...], ...]}` or objects by feature name → `{"predictions": [...]}`.
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
    if content_type != "application/json":
        raise ValueError(f"send application/json, not {content_type}")
    payload = json.loads(body)
    if not isinstance(payload, dict) or "instances" not in payload:
        raise ValueError('the body must be {"instances": [...]}')
    return payload["instances"]


def predict_fn(instances, predictor):
    return predictor.predict(instances)


def output_fn(predictions, accept):
    return json.dumps({"predictions": predictions}), "application/json"
