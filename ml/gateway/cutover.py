"""Moving a gateway's traffic from one endpoint to another, step by step, with failback.

The new endpoint takes the shares of its own `rollout` (canary steps, linear
steps or all at once). After `wait` at each step, what the gateway saw of the new
side during that step (requests, errors, p99 latency, measured by the gateway
itself) is judged against the new endpoint's `rollback` bounds with
`mlform.ml.serving.judging`; a breach, or a step short of evidence with
`on_inconclusive: rollback`, sends every request back to the old side. After the
last step the new side carries everything for `soak`, judged the same way, before
the cutover is done (and the old side may be deleted).

The gateway's weights are its state: each step is written (`Router.set`) before
it is waited on, so a cutover killed at any moment resumes from the weights the
gateway holds (`start`), and the old side keeps its share until the last step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mlform.engine.durations import seconds
from mlform.engine.spec.models import Rollback, Rollout

from ..serving.judging import conclusive, describe, judge, traffic_steps

POLL_SECONDS = 0.25


class Router(Protocol):
    """The gateway being moved, as a provider realises it."""

    def set(self, new_percent: float) -> None:
        """Send `new_percent` of the requests to the new side, the rest to the old."""

    def window(self, since: float) -> dict | None:
        """The new side's `{"requests", "errors", "client_errors", "p99_ms"}` since `since`
        (unix time), as the gateway measured it; None when it saw nothing."""


@dataclass(frozen=True)
class CutoverOutcome:
    error: str | None
    detail: str
    rolled_back: bool = False
    new_percent: float = 100.0
    """Share of requests on the new side at the end."""


def cut_over(router: Router, rollout: Rollout, rollback: Rollback, soak: str,
             start: float = 0.0, progress: Callable[[str], None] = print,
             sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> CutoverOutcome:
    """Step the new side from `start` percent to 100 by `rollout`, judge each step and
    the soak by `rollback`; fail back to the old side on a breach."""
    steps = [p for p in traffic_steps(rollout) if p > start or p == 100]
    if start > 0:
        progress(f"resuming the cutover from {start:g}% on the new endpoint")
    wait = seconds(rollout.wait)
    lines: list[str] = []
    stages = [(f"cutover step {p}%", p, wait) for p in steps]
    if seconds(soak) > 0:
        stages.append((f"soak {soak} at 100%", 100, seconds(soak)))
    for label, percent, hold in stages:
        since = time.time()
        router.set(percent)
        progress(f"{label}: {percent}% of requests on the new endpoint")
        sleep(hold)
        breach, window = _judged(router, since, rollback, sleep, clock)
        lines.append(f"{label}: {describe(window, rollback)}")
        progress(lines[-1])
        if breach is None and not conclusive(window, rollback):
            if rollback.on_inconclusive == "hold":
                return CutoverOutcome(
                    f"{label} is inconclusive: too few requests on the new endpoint to judge; "
                    f"traffic stays split at {percent}% and the next apply resumes there",
                    "\n".join(lines), new_percent=percent)
            breach = (f"too few requests to judge ({describe(window, rollback)}); "
                      "rollback.on_inconclusive is rollback")
        if breach is not None:
            router.set(0)
            why = f"failed back at {label}: {breach}; all traffic is on the old endpoint"
            progress(why)
            return CutoverOutcome(why, "\n".join(lines), rolled_back=True, new_percent=0)
    return CutoverOutcome(None, "\n".join(lines))


def _judged(router: Router, since: float, rollback: Rollback,
            sleep: Callable[[float], None],
            clock: Callable[[], float]) -> tuple[str | None, dict | None]:
    """The step's verdict, waiting up to `evidence_timeout` for enough requests."""
    deadline = clock() + seconds(rollback.evidence_timeout)
    while True:
        window = router.window(since)
        breach = judge(window, rollback)
        if breach is not None or conclusive(window, rollback) or clock() >= deadline:
            return breach, window
        sleep(POLL_SECONDS)
