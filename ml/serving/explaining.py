"""`POST /explain` as every provider's server answers it: the request and the answer.

    {"instances": [[...], ...]}  ->  {"explanations": [{"prediction", "score",
                                      "attributions": {feature: change}}, ...],
                                      "method": "occlusion", "baseline": "training means",
                                      "variant", "model"}

The explanations are `mlform.ml.explain.occlusion` on the artifact of the variant that
explains (drawn by weight as a prediction's would be, and named in the answer); one
forward pass of instances x (features + 1) rows, so at most `MAX_EXPLAINED` instances a
request. Explanations are not predictions: servers neither log them for monitors nor
count them in a variant's metrics or rollout evidence.
"""

from __future__ import annotations

from typing import Any

from mlform.ml.explain import MAX_EXPLAINED

from .parsing import BadRequest, instances, json_object

METHOD = "occlusion"
BASELINE = "training means"


def requested_rows(raw: bytes) -> list:
    """The instances a request body asks to explain; BadRequest says what is wrong."""
    return explained_rows(instances(json_object(raw)))


def explained_rows(rows: list) -> list:
    """`rows`, if one request may ask to explain that many (BadRequest otherwise)."""
    if len(rows) > MAX_EXPLAINED:
        raise BadRequest(f"at most {MAX_EXPLAINED} instances can be explained in one "
                         f"request; this one has {len(rows)}")
    return rows


def answer(explanations: list[dict[str, Any]], variant: str | None,
           model: str | None) -> dict[str, Any]:
    """The answer's JSON object; `variant` and `model` are None where the server does
    not know what it serves (a SageMaker container)."""
    return {"explanations": explanations, "method": METHOD, "baseline": BASELINE,
            "variant": variant, "model": model}


def cannot_explain(variant: str | None, problem: Exception | str) -> str:
    """The 400 error for instances the variant's model cannot take."""
    named = f"variant '{variant}' cannot" if variant else "cannot"
    return f"{named} explain these instances: {problem}"
