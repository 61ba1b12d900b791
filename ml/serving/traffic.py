"""An endpoint's logged traffic (`reqlog`) read into the `Traffic` table the monitor evaluation
(`mlform.ml.monitoring`) reads: one row per predicted instance, oldest first.

The serving side (any provider's) writes `requests.jsonl` (older rows rotated to `requests.1.jsonl`),
one JSON object a line:

    {"t": unix_time, "id": request_id, "variant": name, "model": model_uri,
     "features": [feature names], "instances": [[...], ...], "predictions": [...],
     "scores": [[class probabilities], ...]}      # scores: when the request asked for them

and `feedback.jsonl`: `{"t": ..., "id": request_id, "labels": [...]}`, the labels
aligned with that request's instances (a later feedback for the same id wins).

A request logged twice (a shadow variant logs its copy of the same request) counts
once, with the first logged prediction. A line that does not parse (the one being
written while we read) is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlform.ml.monitoring.traffic import Traffic

REQUEST_LOGS = ("requests.1.jsonl", "requests.jsonl")
"""Oldest first."""
FEEDBACK_LOG = "feedback.jsonl"


def read_traffic(endpoint_dir: Path) -> Traffic:
    import pandas as pd

    labels_by_id = _labels_by_request(endpoint_dir / FEEDBACK_LOG)
    blocks, predictions, labels, times = [], [], [], []
    scores: list[Any] = []
    # consecutive requests with the same feature names become one frame: building a
    # frame per request would cost more than everything else here
    run_names: list[str] | None = None
    run_rows: list[list[Any]] = []
    seen: set[Any] = set()
    for record in _records(endpoint_dir):
        if record["id"] in seen:
            continue
        seen.add(record["id"])
        names, instances = list(record["features"]), record["instances"]
        if names != run_names:
            if run_rows:
                blocks.append(pd.DataFrame(run_rows, columns=run_names))
            run_names, run_rows = names, []
        run_rows.extend(instances)
        answers = list(record.get("predictions") or [])
        predictions.extend(answers + [None] * (len(instances) - len(answers)))
        truth = (labels_by_id.get(record["id"]) or [])[:len(instances)]
        labels.extend(list(truth) + [None] * (len(instances) - len(truth)))
        times.extend([float(record["t"])] * len(instances))
        scored = record.get("scores")
        scored = list(scored)[:len(instances)] if isinstance(scored, list) else []
        scores.extend(scored + [None] * (len(instances) - len(scored)))
    if run_rows:
        blocks.append(pd.DataFrame(run_rows, columns=run_names))
    frame = pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame()
    return Traffic(frame, predictions, labels, times, scores)


def _records(endpoint_dir: Path) -> Iterator[dict[str, Any]]:
    for name in REQUEST_LOGS:
        for record in _json_lines(endpoint_dir / name):
            if {"id", "t", "features", "instances"} <= record.keys() and _well_formed(record):
                yield record


def _well_formed(record: dict[str, Any]) -> bool:
    width = len(record["features"])
    return all(isinstance(row, list) and len(row) == width for row in record["instances"])


def _labels_by_request(path: Path) -> dict[Any, list[Any]]:
    return {record["id"]: record["labels"] for record in _json_lines(path)
            if "id" in record and isinstance(record.get("labels"), list)}


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def logged_requests(endpoint_dir: Path) -> Iterator[dict[str, Any]]:
    """Every logged request, oldest first, as written (`variant`, `id`, `t`, ...)."""
    for name in REQUEST_LOGS:
        yield from _json_lines(endpoint_dir / name)


def logged_feedback(endpoint_dir: Path) -> Iterator[dict[str, Any]]:
    """Every feedback entry, oldest first: `{"t", "id", "labels"?, "outcome"?}`."""
    yield from _json_lines(endpoint_dir / FEEDBACK_LOG)
