"""Polling a job or deployment until it settles, within the resource type's timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlform.engine.provider import Progress

from .errors import GcpError

JOB_STATES = {0: "UNSPECIFIED", 1: "QUEUED", 2: "PENDING", 3: "RUNNING", 4: "SUCCEEDED",
              5: "FAILED", 6: "CANCELLING", 7: "CANCELLED", 8: "PAUSED", 9: "EXPIRED",
              10: "UPDATING", 11: "PARTIALLY_SUCCEEDED"}
SETTLED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED", "PARTIALLY_SUCCEEDED"})


def state_name(state: Any) -> str:
    """A JobState (enum or int) as its name, e.g. 'RUNNING'."""
    name = getattr(state, "name", None)
    if isinstance(name, str):
        return name.removeprefix("JOB_STATE_")
    return JOB_STATES.get(int(state or 0), str(state))


def wait_for_job(describe: Callable[[], Any], *, what: str, timeout: float, interval: float,
                 progress: Progress, resource_type: str,
                 detail: Callable[[], str] | None = None) -> Any:
    """Describe until the job's state settles; the last description. Progress shows the
    state each time it changes, and `detail()` (a running job's last epoch) as it moves."""
    deadline = time.monotonic() + timeout
    last_seen: tuple[str, str] | None = None
    while True:
        job = describe()
        state = state_name(job.state)
        more = detail() if detail and state == "RUNNING" else ""
        if (state, more) != last_seen:
            progress(f"{what}: {state}" + (f" ({more})" if more else ""))
            last_seen = (state, more)
        if state in SETTLED:
            return job
        if time.monotonic() >= deadline:
            raise GcpError(
                f"{what} still {state} after {timeout:.0f}s; it keeps running in Vertex AI. "
                f"Raise the wait with `timeouts: {{{resource_type}: ...}}` in the provider "
                "config and apply again: the provider will find it by its labels and wait")
        time.sleep(interval)
