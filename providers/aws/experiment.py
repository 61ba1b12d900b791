"""An endpoint's A/B experiment on SageMaker: its verdict, measured by the portable core
(`mlform.ml.experiments.verdict.evaluate`) from what SageMaker and the user put in S3,
as the local provider measures it from its request and feedback logs.

- Assignment: SageMaker sends each InvokeEndpoint call to a production variant at
  random by the variants' weights. Random assignment is what the tests assume, so the
  verdict is as valid as on local; what SageMaker lacks is stickiness by a field of the
  body (`experiment.key` is not read). A client that wants it pins the variant itself
  with InvokeEndpoint's `TargetVariant`, computed by `mlform.ml.experiments.assignment.
  assign` (and `sagemaker_name` of the variant).
- Which variant answered, and what: data capture (`capture.read_answers`), whose S3 key
  names the variant. The request's id is its `InferenceId`, else its capture `eventId`.
- Outcomes: feedback lines under the endpoint's ground-truth prefix
  (`ground_truth.read_feedback`): `{"id", "labels"}` or `{"id", "outcome"}`, the bodies
  of local's `POST /feedback`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .capture import read_answers
from .ground_truth import read_feedback
from .naming import sagemaker_name


def verdict(s3: Any, experiment: Mapping[str, Any], variants: list[str], capture_uri: str,
            ground_truth_uri: str, now: float) -> dict[str, Any]:
    """The verdict of `experiment` (the spec's fields) between the endpoint's production
    `variants` (the spec's names), from the capture under `capture_uri`
    (`<DestinationS3Uri>/<endpoint>/`) and the feedback under `ground_truth_uri`."""
    from mlform.ml.experiments.verdict import evaluate

    return evaluate(experiment, variants, requests(read_answers(s3, capture_uri), variants),
                    read_feedback(s3, ground_truth_uri), now=now)


def requests(answers: list[dict[str, Any]], variants: list[str]) -> list[dict[str, Any]]:
    """Captured answers as the request log's records the verdict reads (`id`, `t`,
    `variant` by the spec's name, `predictions`); a variant the spec no longer has (an
    earlier config's, a shadow's) is left out."""
    spec_name = {sagemaker_name(v): v for v in variants}
    return [{"id": a["id"], "t": a["t"], "variant": spec_name[a["variant"]],
             "predictions": a["predictions"]}
            for a in answers if a["variant"] in spec_name]
