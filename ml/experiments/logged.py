"""An experiment's verdict from a cloud endpoint's request log and ground truth.

The serving containers of the cloud providers write the local request log's lines,
with the deployment that answered in `variant` (a deployed model id on Vertex AI, a
deployment name on Azure ML), and users upload ground truth in the local feedback
log's shape (`{"id", "labels"?, "outcome"?}`). This names each record's variant by the
endpoint's map from deployment to variant and hands the records to the same
`verdict.evaluate` the local provider uses, so the statistics exist once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .verdict import evaluate


def json_lines(data: bytes | None) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines object; a line that does not parse is skipped."""
    for line in (data or b"").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def by_variant(requests: Iterable[Mapping[str, Any]],
               variant_of: Mapping[str, str]) -> list[dict[str, Any]]:
    """The records answered by a deployment of `variant_of`, each with `variant` the
    variant's name; records of other deployments (a shadow, one already removed) are left
    out."""
    out = []
    for record in requests:
        variant = variant_of.get(str(record.get("variant")))
        if variant is not None:
            out.append({**record, "variant": variant})
    return out


def verdict(experiment: Mapping[str, Any], variants: list[str],
            requests: Iterable[Mapping[str, Any]], feedback: Iterable[Mapping[str, Any]],
            variant_of: Mapping[str, str], now: float | None = None,
            serving: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """`verdict.evaluate` over the records, oldest first, named by variant."""
    named = sorted(by_variant(requests, variant_of), key=lambda r: float(r.get("t") or 0.0))
    return evaluate(experiment, variants, named, feedback, now=now, serving=serving)
