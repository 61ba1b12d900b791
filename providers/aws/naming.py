"""Deterministic names and ownership tags for what the provider creates.

SageMaker names allow letters, digits and hyphens, at most 63 characters. A name
built from the stack, the resource and a fingerprint of its inputs is the same on
every try, so a create repeated after an interrupted apply finds the first one.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

MAX_NAME = 63
STACK_TAG = "mlform:stack"
RESOURCE_TAG = "mlform:resource"
TYPE_TAG = "mlform:type"


def fingerprint(value: Any, length: int = 10) -> str:
    """Short stable digest of JSON-able data (dict order does not matter)."""
    data = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:length]


def sagemaker_name(*parts: str, max_len: int = MAX_NAME) -> str:
    """`parts` joined by hyphens, reduced to SageMaker's alphabet and length.

    A name that must be shortened keeps its last part (the digest that makes it
    unique) and gains a digest of the whole, so two long names never collide.
    """
    raw = "-".join(p for p in parts if p)
    clean = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9-]", "-", raw)).strip("-")
    if len(clean) <= max_len:
        return clean
    tail = fingerprint(raw, 6)
    last = re.sub(r"[^A-Za-z0-9-]", "-", parts[-1]).strip("-")[: max_len // 3]
    head = clean[: max_len - len(last) - len(tail) - 2].rstrip("-")
    return f"{head}-{last}-{tail}" if last else f"{head}-{tail}"


def tags(stack: str, resource: str, rtype: str, extra: dict[str, str] | None = None
         ) -> list[dict[str, str]]:
    """Tags in the SageMaker/CloudWatch form, ownership tags last so they always win."""
    merged = {**(extra or {}), STACK_TAG: stack, RESOURCE_TAG: resource, TYPE_TAG: rtype}
    return [{"Key": k, "Value": str(v)} for k, v in merged.items()]


def tag_dict(tag_list: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list}
