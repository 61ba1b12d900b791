"""Ground-truth labels uploaded to S3, read as {request id: labels} for the monitor's
performance check: the aws counterpart of the local endpoint's `feedback.jsonl`.

Every object under the prefix is read as JSON lines; a line is either mlform's feedback
shape (the body of local's `POST /feedback`):

    {"id": "<request id>", "labels": [...]}      (or "outcome": 12.5, for experiments)

or SageMaker Model Monitor's ground-truth record, so files already uploaded for Model
Monitor serve as they are:

    {"groundTruthData": {"data": "1", "encoding": "CSV"},
     "eventMetadata": {"eventId": "<request id>"}, "eventVersion": "0"}

The request id is the captured request's `inferenceId` (the `InferenceId` its caller
gave to InvokeEndpoint) or, without one, its `eventId`, as Model Monitor merges them.
The labels are aligned with that request's instances. Objects are read oldest first,
so a later line for the same id wins, as a later feedback does on local. A line that
does not parse is skipped (one being written while we read).
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterator
from typing import Any

from .layout import split_uri


def read_ground_truth(s3: Any, uri: str) -> dict[str, list[Any]]:
    """The labels of each request id, from the JSON lines of every object under `uri`."""
    labels: dict[str, list[Any]] = {}
    for line in _lines(s3, uri):
        found = labelled(line)
        if found:
            labels[found[0]] = found[1]
    return labels


def read_feedback(s3: Any, uri: str) -> list[dict[str, Any]]:
    """The feedback under `uri` as local's `/feedback` bodies, oldest first: `{"id",
    "labels"}` from either shape, and `{"id", "outcome"}` (a business value, mlform's
    shape only) for an experiment whose metric is `outcome`."""
    found = []
    for line in _lines(s3, uri):
        labels = labelled(line)
        record: dict[str, Any] = {"id": labels[0], "labels": labels[1]} if labels else {}
        outcome = _outcome(line)
        if outcome is not None:
            record = {"id": outcome[0], **record, "outcome": outcome[1]}
        if record:
            found.append(record)
    return found


def _lines(s3: Any, uri: str) -> Iterator[str]:
    """The lines of every object under `uri`, objects oldest first."""
    bucket, prefix = split_uri(uri)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    objects = sorted((o for p in pages for o in p.get("Contents", [])),
                     key=lambda o: (o["LastModified"], o["Key"]))
    for obj in objects:
        text = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        yield from text.splitlines()


def _outcome(line: str) -> tuple[str, float] | None:
    """(request id, outcome) of a line in mlform's shape that reports one."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("id") in (None, ""):
        return None
    value = record.get("outcome")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return str(record["id"]), float(value)


def labelled(line: str) -> tuple[str, list[Any]] | None:
    """(request id, labels) of one line in either shape; None when it holds neither."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    if "groundTruthData" in record:
        request = (record.get("eventMetadata") or {})
        request_id = request.get("inferenceId") or request.get("eventId")
        labels = _sagemaker_labels(record["groundTruthData"])
    else:
        request_id, labels = record.get("id"), record.get("labels")
    if request_id in (None, "") or not isinstance(labels, list):
        return None
    return str(request_id), labels


def _sagemaker_labels(data: Any) -> list[Any] | None:
    """`groundTruthData` as a list of labels: CSV values (numbers where they read as
    JSON numbers, as the CSV a model was trained on), or JSON (a list, `{"labels"}`,
    or one value)."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), str):
        return None
    text = data["data"]
    encoding = str(data.get("encoding", "CSV")).upper()
    if encoding == "BASE64":  # either of the two below, encoded: read as JSON if it is
        try:
            text = base64.b64decode(text, validate=True).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None
        encoding = "JSON" if _is_json(text) else "CSV"
    if encoding == "JSON":
        if not _is_json(text):
            return None
        value = json.loads(text)
        value = value.get("labels") if isinstance(value, dict) else value
        return value if isinstance(value, list) else [value]
    return [_csv_value(cell) for row in csv.reader(text.splitlines()) for cell in row]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _csv_value(cell: str) -> Any:
    try:
        value = json.loads(cell)
    except json.JSONDecodeError:
        return cell
    return value if isinstance(value, int | float) and not isinstance(value, bool) else cell
