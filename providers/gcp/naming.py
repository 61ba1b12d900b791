"""Deterministic ids and ownership labels for what the provider creates.

Vertex AI ids (a model's `model_id`, an endpoint's `endpoint_id`) allow lowercase
letters, digits and hyphens, start with a letter, at most 63 characters. Labels are
the ownership record of everything: keys and values lowercase, at most 63 characters,
letters, digits, `_` and `-`. Custom jobs take no caller-chosen id, so a job carries
the fingerprint of its inputs as a label and is found again by a label filter.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

MAX_ID = 63
MAX_LABEL = 63
STACK_LABEL = "mlform-stack"
RESOURCE_LABEL = "mlform-resource"
TYPE_LABEL = "mlform-type"
FINGERPRINT_LABEL = "mlform-fingerprint"
RUN_LABEL = "mlform-run"
OWNERSHIP = (STACK_LABEL, RESOURCE_LABEL, TYPE_LABEL)


def fingerprint(value: Any, length: int = 10) -> str:
    """Short stable digest of JSON-able data (dict order does not matter)."""
    data = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:length]


def vertex_id(*parts: str, max_len: int = MAX_ID) -> str:
    """`parts` joined by hyphens in Vertex AI's id alphabet (`[a-z0-9-]`, a letter first).

    A shortened id keeps its last part and gains a digest of the whole, so two long
    ids never collide; the case folded away is kept in the digest too."""
    raw = "-".join(p for p in parts if p)
    clean = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", raw.lower())).strip("-")
    if not clean or not clean[0].isalpha():
        clean = f"m-{clean}".rstrip("-")
    if raw.lower() != raw:  # `Fraud` and `fraud` must not share an id
        clean = f"{clean}-{fingerprint(raw, 4)}"
    if len(clean) <= max_len:
        return clean
    tail = fingerprint(raw, 6)
    last = re.sub(r"[^a-z0-9-]", "-", parts[-1].lower()).strip("-")[: max_len // 3]
    head = clean[: max_len - len(last) - len(tail) - 2].rstrip("-")
    return f"{head}-{last}-{tail}" if last else f"{head}-{tail}"


def label_value(value: str) -> str:
    """`value` as a label value: lowercase, `[a-z0-9_-]`, at most 63 characters (a longer
    or changed one keeps a digest of the original, so distinct values stay distinct)."""
    clean = re.sub(r"[^a-z0-9_-]", "-", str(value).lower())
    if clean == value and len(clean) <= MAX_LABEL:
        return clean
    digest = fingerprint(value, 6)
    return f"{clean[: MAX_LABEL - len(digest) - 1]}-{digest}"


def label_key(key: str) -> str:
    """A user's tag name as a label key (lowercase, a letter first; a key is a name the
    user chose, so it is folded without a digest unless it is too long)."""
    clean = re.sub(r"[^a-z0-9_-]", "-", key.lower())
    clean = clean if len(clean) <= MAX_LABEL else label_value(key)
    return clean if clean[:1].isalpha() else f"t{clean}"[:MAX_LABEL]


def labels(stack: str, resource: str, rtype: str, extra: dict[str, str] | None = None,
           **more: str) -> dict[str, str]:
    """Labels for a Vertex AI resource or GCS object: the user's tags, then mlform's
    ownership labels, which always win."""
    merged = {label_key(k): label_value(v) for k, v in (extra or {}).items()}
    merged.update({STACK_LABEL: label_value(stack), RESOURCE_LABEL: label_value(resource),
                   TYPE_LABEL: label_value(rtype)})
    merged.update({k: label_value(v) for k, v in more.items()})
    return merged


def label_filter(**pairs: str) -> str:
    """A Vertex AI list filter matching every `labels.<key>=<value>` pair."""
    return " AND ".join(f"labels.{k}={v}" for k, v in sorted(pairs.items()))


def owned_by(found: dict[str, str] | Any, stack: str, resource: str | None = None) -> bool:
    """Whether `found` (a resource's labels) says it is this stack's (and resource's)."""
    live = dict(found or {})
    if live.get(STACK_LABEL) != label_value(stack):
        return False
    return resource is None or live.get(RESOURCE_LABEL) == label_value(resource)
