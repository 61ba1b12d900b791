"""Deterministic names and ownership tags for what the provider creates.

Azure ML names: jobs `[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}`; models, data and code assets
letters, digits, `-`, `_` and `.`; online endpoints 3-32 characters `[a-zA-Z][a-zA-Z0-9-]*`
(unique in the region); deployments 3-32 characters `[a-z][a-z0-9-]*`. A shortened name
keeps a digest of the whole, so two long names never collide. Tags are the ownership
record of everything (workspace assets, jobs, endpoints, deployments and blobs' metadata).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

STACK_TAG = "mlform-stack"
RESOURCE_TAG = "mlform-resource"
TYPE_TAG = "mlform-type"
FINGERPRINT_TAG = "mlform-fingerprint"
VARIANT_TAG = "mlform-variant"
ALIASES_TAG = "mlform-aliases"
OWNERSHIP = (STACK_TAG, RESOURCE_TAG, TYPE_TAG)
MAX_ENDPOINT = 32
MAX_DEPLOYMENT = 32
MAX_JOB = 255
MAX_ASSET = 255


def fingerprint(value: Any, length: int = 10) -> str:
    """Short stable digest of JSON-able data (dict order does not matter)."""
    data = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:length]


def _clean(raw: str, alphabet: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(f"[^{alphabet}]", "-", raw)).strip("-_")


def shortened(clean: str, raw: str, max_len: int) -> str:
    """`clean` cut to `max_len`, with a digest of `raw` so cut names stay distinct."""
    if len(clean) <= max_len:
        return clean
    tail = fingerprint(raw, 6)
    return f"{clean[: max_len - len(tail) - 1].rstrip('-_')}-{tail}"


def job_name(stack: str, resource: str, digest: str, attempt: int = 1) -> str:
    """A command job's name: stack, resource and the fingerprint of its inputs, so a
    create repeated after an interrupted apply finds the job by name; `-r2`, `-r3` for
    runs after a released one (a job's name is never reused)."""
    raw = "-".join((stack, resource, digest))
    clean = _clean(raw.lower(), "a-z0-9_-") or "job"
    suffix = f"-r{attempt}" if attempt > 1 else ""
    if raw.lower() != raw:  # `Fraud` and `fraud` must not share a name
        clean = f"{clean}-{fingerprint(raw, 4)}"
    return shortened(clean, raw, MAX_JOB - len(suffix)) + suffix


def asset_name(stack: str, resource: str) -> str:
    """A model, data or code asset's name."""
    raw = f"{stack}-{resource}"
    clean = _clean(raw, "a-zA-Z0-9._-") or "asset"
    return shortened(clean, raw, MAX_ASSET)


def endpoint_name(stack: str, resource: str) -> str:
    """An online endpoint's name (3-32 characters, a letter first)."""
    raw = f"{stack}-{resource}"
    clean = _clean(raw.lower(), "a-z0-9-")
    if not clean[:1].isalpha():
        clean = f"e-{clean}"
    if raw.lower() != raw:
        clean = f"{clean}-{fingerprint(raw, 4)}"
    clean = shortened(clean, raw, MAX_ENDPOINT)
    return clean if len(clean) >= 3 else f"{clean}-ep"


def deployment_name(variant: str, model: str) -> str:
    """The deployment of `variant` serving `model`: a new model is a new deployment beside
    the old one, so a rollout can step traffic between them."""
    tail = fingerprint(model, 6)
    clean = _clean(variant.lower(), "a-z0-9-") or "v"
    if not clean[:1].isalpha():
        clean = f"v-{clean}"
    if variant.lower() != variant:
        tail = fingerprint([variant, model], 6)
    return f"{clean[: MAX_DEPLOYMENT - len(tail) - 1].rstrip('-')}-{tail}"


def tags(stack: str, resource: str, rtype: str, extra: dict[str, Any] | None = None,
         **more: str) -> dict[str, str]:
    """Tags for an Azure resource or blob: the user's tags, then mlform's ownership tags,
    which always win."""
    merged = {str(k): str(v) for k, v in (extra or {}).items()}
    merged.update({STACK_TAG: stack, RESOURCE_TAG: resource, TYPE_TAG: rtype})
    merged.update({k: str(v) for k, v in more.items()})
    return merged


def blob_metadata(found: dict[str, str]) -> dict[str, str]:
    """Tags as blob metadata: names must be C identifiers there."""
    return {re.sub(r"[^A-Za-z0-9_]", "_", k): v for k, v in found.items()}


def owned_by(found: dict[str, str] | None, stack: str, resource: str | None = None) -> bool:
    """Whether tags `found` say it is this stack's (and resource's)."""
    live = dict(found or {})
    if live.get(STACK_TAG) != stack:
        return False
    return resource is None or live.get(RESOURCE_TAG) == resource
