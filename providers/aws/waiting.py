"""Polling a job or endpoint until it settles, within the resource type's timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlform.engine.provider import Progress

from .errors import AwsError


def wait_until(describe: Callable[[], dict[str, Any]], status_key: str,
               settled: frozenset[str], *, what: str, timeout: float, interval: float,
               progress: Progress, resource_type: str) -> dict[str, Any]:
    """Describe until `status_key` takes a value in `settled`; the last description.

    Progress shows the status and, for training, the secondary status, each time it
    changes, so a person watching sees Starting → Downloading → Training.
    """
    deadline = time.monotonic() + timeout
    last_seen = None
    while True:
        desc = describe()
        status = desc.get(status_key)
        seen = (status, desc.get("SecondaryStatus"))
        if seen != last_seen:
            progress(f"{what}: " + " / ".join(s for s in seen if s))
            last_seen = seen
        if status in settled:
            return desc
        if time.monotonic() >= deadline:
            raise AwsError(
                f"{what} still {status} after {timeout:.0f}s; it keeps running in AWS. "
                f"Raise the wait with `timeouts: {{{resource_type}: ...}}` in the provider "
                "config and apply again: the provider will find it and wait")
        time.sleep(interval)
