"""Job names and ownership comments.

A job's name is the stack, the resource and the run's digest (the fingerprint of the
inputs that decide its result), so a create repeated after an interrupted apply finds
the job it submitted with `squeue --name`. Its `--comment` says which stack and
resource own it, so `list_owned` reads ownership back from squeue.
"""

from __future__ import annotations

import re

PREFIX = "mlform"
DIGEST = 12
MAX_NAME = 200


def job_name(stack: str, resource: str, digest: str) -> str:
    """`mlform-<stack>-<resource>-<digest>`, in characters every shell and log keeps."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{stack}-{resource}")
    return f"{PREFIX}-{clean[:MAX_NAME]}-{digest[:DIGEST]}"


def comment(stack: str, resource: str, rtype: str) -> str:
    return f"{PREFIX}:stack={stack};resource={resource};type={rtype}"


def owner(text: str) -> dict[str, str]:
    """{stack, resource, type} of a comment `comment` wrote; {} for any other."""
    if not text.startswith(f"{PREFIX}:"):
        return {}
    fields = dict(part.partition("=")[::2] for part in text[len(PREFIX) + 1:].split(";"))
    return fields if {"stack", "resource", "type"} <= set(fields) else {}
