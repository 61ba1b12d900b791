"""A request answered by a server with one route for everything (Vertex AI's custom
container, Azure ML's `/score`, SageMaker's `/invocations`): labels, scores or
explanations, as the body asks.

    {"instances": [...]}                                -> {"predictions": [labels]}
    {"instances": [...], "return": "probabilities"}     -> + "probabilities", "classes"
                                                           (`scores`)
    {"instances": [...], "explain": true}               -> local's `POST /explain` answer:
                                                           {"explanations", "method",
                                                            "baseline", "variant", "model"}

Such a platform has no second route to serve `/explain` on, so explanations are asked in
the body. An option may sit at the top of the body, as on local, or under `"parameters"`,
where Vertex AI's `predict` puts a request's options (the SDK's
`endpoint.predict(instances=..., parameters={...})`); the same option given in both
places with different values is a bad request. An explanation is no prediction: it is
neither logged for monitors nor scored as one (`Answered.predictions` is None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlform.ml.explain import occlusion

from . import explaining, scores
from .parsing import BadRequest, encode, instances

EXPLAIN = "explain"
PARAMETERS = "parameters"
PREDICT_FAULTS = (ValueError, KeyError, TypeError)
"""What a predictor raises for instances it cannot take (the client's fault: a 400)."""


@dataclass(frozen=True)
class Answered:
    """A request's answer: `answer` is its JSON object (the server adds the request id);
    `predictions` and `scores` are the JSON text the request log keeps (None: nothing
    to log, or no scores asked)."""

    answer: dict[str, Any]
    rows: list
    predictions: str | None
    scores: str | None


def option(body: dict, name: str, default: Any = None) -> Any:
    """The option `name` of a request body, at its top or under "parameters"."""
    given = body.get(PARAMETERS)
    nested = given if isinstance(given, dict) else {}
    if name in body and name in nested and body[name] != nested[name]:
        raise BadRequest(f"'{name}' is given twice with different values: at the top of "
                         f"the body ({body[name]!r}) and in 'parameters' "
                         f"({nested[name]!r}); give it once")
    if name in body:
        return body[name]
    return nested.get(name, default)


def wants_explanation(body: dict) -> bool:
    wanted = option(body, EXPLAIN, False)
    if not isinstance(wanted, bool):
        raise BadRequest(f"'{EXPLAIN}' must be true or false, not {wanted!r}")
    return wanted


def answer(predictor, body: dict, variant: str | None, model: str | None) -> Answered:
    """What `predictor` answers to `body`; BadRequest says what the client must change
    (the body, or instances the model cannot take). `variant` and `model` name what
    explains, where the server knows them (None where it does not)."""
    rows = instances(body)
    output = scores.requested({"return": option(body, "return", scores.LABELS)})
    if wants_explanation(body):  # local's `/explain`, request and answer (`explaining`)
        explaining.explained_rows(rows)
        try:
            found = occlusion(predictor, rows)
        except PREDICT_FAULTS as e:
            raise BadRequest(explaining.cannot_explain(variant, e)) from None
        return Answered(explaining.answer(found, variant, model), rows, None, None)
    try:
        predictions, probabilities = scores.predict(predictor, rows, output)
    except PREDICT_FAULTS as e:
        raise BadRequest(f"cannot predict these instances: {e}") from None
    out: dict[str, Any] = {"predictions": predictions}
    if probabilities is None:
        return Answered(out, rows, encode(predictions), None)
    out.update(probabilities=probabilities, classes=predictor.classes)
    return Answered(out, rows, encode(predictions), encode(probabilities))
