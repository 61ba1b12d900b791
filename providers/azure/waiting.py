"""Polling a command job until it settles, within the resource type's timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlform.engine.provider import Progress

from .errors import AzureError

SETTLED = frozenset({"Completed", "Failed", "Canceled", "NotResponding"})
FAILED = frozenset({"Failed", "Canceled", "NotResponding", "CancelRequested"})


def wait_for_job(describe: Callable[[], dict[str, Any]], *, what: str, timeout: float,
                 interval: float, progress: Progress, resource_type: str) -> dict[str, Any]:
    """Read the job until its status settles; the last reading. Progress shows the status
    each time it changes."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        job = describe()
        status = status_of(job)
        if status != last:
            progress(f"{what}: {status}")
            last = status
        if status in SETTLED:
            return job
        if time.monotonic() >= deadline:
            raise AzureError(
                f"{what} still {status} after {timeout:.0f}s; it keeps running in Azure ML. "
                f"Raise the wait with `timeouts: {{{resource_type}: ...}}` in the provider "
                "config and apply again: the provider will find the job by its name and wait")
        time.sleep(interval)


def status_of(job: dict[str, Any]) -> str:
    return str((job.get("properties") or {}).get("status") or "NotStarted")


def failure_reason(job: dict[str, Any]) -> str:
    """Why a job failed, as the service reports it."""
    props = job.get("properties") or {}
    for holder in (props.get("error"), props.get("errorDetails"), job.get("error")):
        if isinstance(holder, dict):
            message = holder.get("message") or (holder.get("error") or {}).get("message")
            if message:
                return " ".join(str(message).split())[-600:]
    reason = (props.get("properties") or {}).get("azureml.failureReason") or \
        props.get("statusMessage")
    return str(reason) if reason else "no reason given"
