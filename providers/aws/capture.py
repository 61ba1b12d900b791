"""An endpoint's SageMaker data capture read into the `Traffic` table the monitor
evaluation (`mlform.ml.monitoring`) reads: one row per captured instance, oldest first.

Capture files hold one JSON line per request (`captureData.endpointInput` and
`endpointOutput`, each JSON or base64-encoded JSON; `eventMetadata.eventId` and
`inferenceTime`). Inputs are mlform's `{"instances": [...]}`: objects by feature name,
or lists in the order of the monitor's `features`; outputs are `{"predictions": [...]}`.

Only the files a window needs are read: the newest ones until `window_rows` rows (the
current window) and the oldest ones until `window_rows` rows (the baseline the output
drift compares with, the model's first answers). Rows between them are left unread; the
evaluation never looks at them, so its numbers are those of reading everything.

Capture holds no ground truth: labels come from `ground_truth.read_ground_truth`,
keyed by request id, which is the request's `eventMetadata.inferenceId` (the id its
caller gave) or else its `eventId`, the key SageMaker Model Monitor merges labels by.
A request with no labels has None for each of its instances.

Data capture captures every sampled invocation, explanation calls (`"explain": true`,
`container_serve`) included; those are not predictions (nor an experiment's outcomes)
and are skipped, as the local endpoint never logs its `/explain` calls.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from mlform.ml.monitoring.traffic import Traffic
from mlform.ml.serving.answering import wants_explanation
from mlform.ml.serving.parsing import BadRequest

from .errors import AwsError
from .layout import split_uri


def read_capture(s3: Any, capture_uri: str, window_rows: int, features: list[str] | None,
                 labels: dict[str, list[Any]] | None = None) -> Traffic:
    """The captured traffic under `capture_uri` that an evaluation of `window_rows`
    rows needs; `features` names the columns of list instances, `labels` the ground
    truth of each request id."""
    bucket, prefix = split_uri(capture_uri)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    objects = sorted((o for p in pages for o in p.get("Contents", [])),
                     key=lambda o: (o["LastModified"], o["Key"]))

    def read(obj: dict[str, Any]) -> list[dict[str, Any]]:
        text = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        stamp = obj["LastModified"].timestamp()
        return [r for line in text.splitlines() if (r := _record(line, stamp))]

    newest: list[list[dict[str, Any]]] = []
    rows, end = 0, len(objects)
    while end > 0 and rows < window_rows:
        end -= 1
        newest.insert(0, read(objects[end]))
        rows += sum(len(r["instances"]) for r in newest[0])
    oldest: list[list[dict[str, Any]]] = []
    rows, start = 0, 0
    while start < end and rows < window_rows:
        oldest.append(read(objects[start]))
        rows += sum(len(r["instances"]) for r in oldest[-1])
        start += 1
    records = [r for block in (*oldest, *newest) for r in block]
    return _traffic(records, features, labels or {})


def read_answers(s3: Any, endpoint_uri: str) -> list[dict[str, Any]]:
    """Every request captured under `endpoint_uri` (`<DestinationS3Uri>/<endpoint>/`),
    oldest first, as {"id", "event", "t", "variant", "instances", "predictions"}: what
    an experiment's verdict reads. SageMaker writes each variant's capture under
    `<endpoint>/<variant>/yyyy/mm/dd/hh/`, and nothing in the record names the variant,
    so it is read from the key; `id` is the request id ground truth joins on."""
    bucket, prefix = split_uri(endpoint_uri.rstrip("/") + "/")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    objects = sorted((o for p in pages for o in p.get("Contents", [])),
                     key=lambda o: (o["LastModified"], o["Key"]))
    answers = []
    for obj in objects:
        variant = obj["Key"][len(prefix):].split("/", 1)[0]
        text = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        for line in text.splitlines():
            record = _record(line, obj["LastModified"].timestamp())
            if record is not None:
                answers.append({**record, "id": record["request_id"],
                                "event": record["id"], "variant": variant})
    answers.sort(key=lambda r: r["t"])
    return answers


def _traffic(records: list[dict[str, Any]], features: list[str] | None,
             labels_by_id: dict[str, list[Any]]) -> Traffic:
    import pandas as pd

    instances, predictions, labels, times = [], [], [], []
    seen: set[str] = set()
    for record in records:
        # a request captured twice (a retried upload) counts once, as on local
        if record["id"] and record["id"] in seen:
            continue
        seen.add(record["id"])
        instances.extend(record["instances"])
        answers = record["predictions"][:len(record["instances"])]
        predictions.extend(answers + [None] * (len(record["instances"]) - len(answers)))
        truth = labels_by_id.get(record["request_id"], [])[:len(record["instances"])]
        labels.extend(truth + [None] * (len(record["instances"]) - len(truth)))
        times.extend([record["t"]] * len(record["instances"]))
    if instances and not isinstance(instances[0], dict):
        if not features:
            raise AwsError("captured instances are lists: set the monitor's `features` "
                           "to name their columns in order")
        frame = pd.DataFrame(instances, columns=features)
    else:
        frame = pd.DataFrame(instances)
    return Traffic(frame, predictions, labels, times)


def _record(line: str, stamp: float) -> dict[str, Any] | None:
    """One capture line as {"id", "request_id", "t", "instances", "predictions"}; None
    for a blank or unparsable line (one being written while we read). `id` (the eventId)
    tells a retried upload of the same capture; `request_id` joins the ground truth."""
    try:
        capture = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(capture, dict):
        return None
    data = capture.get("captureData", {})
    meta = capture.get("eventMetadata", {})
    request = _payload(data.get("endpointInput", {}))
    answer = _payload(data.get("endpointOutput", {}))
    instances = request.get("instances") if isinstance(request, dict) else None
    if not isinstance(instances, list) or _explains(request):
        return None
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    event_id = str(meta.get("eventId") or "")
    return {"id": event_id, "request_id": str(meta.get("inferenceId") or event_id),
            "t": _time(meta.get("inferenceTime"), stamp),
            "instances": instances,
            "predictions": predictions if isinstance(predictions, list) else []}


def _explains(request: dict[str, Any]) -> bool:
    """Whether a captured request asked for explanations rather than predictions (one
    whose flag is unreadable was refused, and answered no prediction either)."""
    try:
        return wants_explanation(request)
    except BadRequest:
        return True


def _payload(part: dict[str, Any]) -> Any:
    data = part.get("data", "")
    if not data:
        return None
    if part.get("encoding") == "BASE64":
        data = base64.b64decode(data).decode()
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        return None


def _time(inference_time: Any, fallback: float) -> float:
    if isinstance(inference_time, str):
        try:
            return datetime.fromisoformat(inference_time.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return fallback
