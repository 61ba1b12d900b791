"""A prediction request's body as every endpoint reads it, and the JSON it answers in.

`POST /predict` takes `{"instances": [[...], ...]}` (or rows as objects by feature
name); `BadRequest` says, in the words clients see, what is wrong with a body. Every
answer's JSON is written by `encode` (compact, NaN refused), and request ids come
from `RequestIds`, so that each provider answers byte for byte alike.
"""

from __future__ import annotations

import json
import os
import re


class BadRequest(Exception):
    """The request cannot be served as sent; the message says why."""


class RequestIds:
    """Request ids: 32 hex digits, a random half fixed for the server's life and a
    counter. Unique across restarts as uuid4 is, at a tenth of its cost."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = 0

    def next(self) -> str:
        self._count += 1
        return f"{self._prefix}{self._count:016x}"


encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode
"""JSON text as Starlette's JSONResponse writes it (NaN is refused, not sent)."""


_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
"""A `\\uD800`-style escape or the UTF-8 form of a surrogate: a lone one may follow."""


def json_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadRequest("the body nests arrays or objects too deeply") from None
    except ValueError as e:  # not JSON, not UTF-8, or an integer of thousands of digits
        raise BadRequest(f"the body must be a JSON object: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if _MAYBE_SURROGATE.search(raw) and _has_lone_surrogate(body):
        # no UTF-8 text holds one: answering or logging the request would fail later
        raise BadRequest("the body holds a lone UTF-16 surrogate (such as \"\\ud800\"), "
                         "which is not text")
    return body


def _has_lone_surrogate(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def instances(body: dict) -> list:
    found = body.get("instances")
    if not isinstance(found, list) or not found:
        raise BadRequest("'instances' must be a non-empty list of instances, each a list of "
                         "feature values or an object keyed by feature name")
    return found


def feedback_problem(body: dict) -> str | None:
    """What is wrong with a `POST /feedback` body `{"id", "labels"}` (and/or a business
    `"outcome"` number, which experiments with `metric: outcome` compare), or None."""
    rid, labels, outcome = body.get("id"), body.get("labels"), body.get("outcome")
    if not isinstance(rid, str) or not rid:
        return "'id' must be the id of a prediction response (a string)"
    if "outcome" in body and (not isinstance(outcome, int | float) or isinstance(outcome, bool)
                              or outcome != outcome or outcome in (float("inf"), float("-inf"))):
        return "'outcome' must be a finite number: the business value of that request"
    if "outcome" in body and "labels" not in body:
        return None
    if not isinstance(labels, list) or not labels:
        return ("'labels' must be a non-empty list: the true value of each instance of "
                "that request, in order")
    return None


def feedback_entry(body: dict, now: float) -> dict:
    """The feedback log's line for a body `feedback_problem` accepted."""
    entry: dict = {"t": now, "id": body["id"]}
    if "labels" in body:
        entry["labels"] = body["labels"]
    if "outcome" in body:
        entry["outcome"] = body["outcome"]
    return entry


def experiment_key(body: dict, field: str) -> str | None:
    """The value of the request's experiment key field as text, None when absent;
    BadRequest when it is not a string or an integer."""
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest(f"'{field}' (the experiment's key) must be a string or an integer")
    return str(value)
