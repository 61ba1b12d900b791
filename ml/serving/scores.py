"""Scores on `POST /predict`: what a client asks an endpoint to return, and the answer.

    {"instances": [...]}                               -> {"predictions": [labels], ...}
    {"instances": [...], "return": "probabilities"}    -> {"predictions": [labels],
                                                           "probabilities": [[p, ...], ...],
                                                           "classes": [label, ...], ...}

Probabilities come per instance in `classes` order (the model's), sum to 1, and the
label predicted is the most probable class (ties to the first), from the same forward
pass, so the two never disagree. A regression model's predictions are its numbers
already: asked for probabilities, it answers them alone. The request log keeps the
probabilities answered (`"scores"`), which monitors read for output drift on scores.

Every provider's server answers with these, so a client reads scores alike anywhere.
"""

from __future__ import annotations

from typing import Any

from .parsing import BadRequest

LABELS, PROBABILITIES = "labels", "probabilities"
OUTPUTS = (LABELS, PROBABILITIES)


def requested(body: dict) -> str:
    """The output a request body asks for (`"return"`, default labels)."""
    wanted = body.get("return", LABELS)
    if wanted not in OUTPUTS:
        raise BadRequest(f"'return' must be one of {', '.join(map(repr, OUTPUTS))}, not "
                         f"{wanted!r}")
    return wanted


def predict(predictor, instances: Any, output: str = LABELS) -> tuple[list, list | None]:
    """(predictions, per-instance class probabilities or None) for `output`."""
    if output != PROBABILITIES or predictor.task != "classification":
        return predictor.predict(instances), None
    probabilities = predictor.predict_proba(instances)
    classes = predictor.classes
    return [classes[_argmax(row)] for row in probabilities], probabilities


def _argmax(row: list[float]) -> int:
    best = 0
    for i, p in enumerate(row):
        if p > row[best]:
            best = i
    return best


def answer_fields(probabilities_json: str | None, classes: list | None,
                  encode) -> str:
    """The JSON text that follows `"predictions": [...]` in an answer: empty for labels,
    `,"probabilities":[...],"classes":[...]` for probabilities (`encode` is the
    server's JSON encoder)."""
    if probabilities_json is None:
        return ""
    return f',"probabilities":{probabilities_json},"classes":{encode(classes)}'
