"""Moving an endpoint's traffic to new variants step by step on Ray Serve, with rollback.

The new variants' applications are deployed beside the old ones first, with no share
of the requests. Each step then gives the router a routing table with the new variants
as its canary set at the step's share (a `user_config` change: the running router
takes it in place, nothing restarts), waits `rollout.wait`, and judges what the new
variants answered since the router took the table, from the router's own per-variant
statistics, with the core's judgement (`mlform.ml.serving.judging`, the local
provider's): a breach, or too little evidence with `on_inconclusive: rollback`, puts
every request back on the old variants. Once every step passed, the new variants are
the stable set; the caller then removes the old applications.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from mlform.engine.durations import seconds
from mlform.engine.provider import Progress
from mlform.engine.spec.models import Rollback, Rollout
from mlform.ml.serving.judging import answered, conclusive, describe, judge, traffic_steps

from ..errors import RayError
from .apps import routing
from .split import CANARY

POLL_SECONDS = 0.5


class RouterClient:
    """The router's HTTP routes, through Serve's proxy, and the Serve change that gives
    it a new routing table (`serve(table)`: returns once the router answers with it)."""

    def __init__(self, url: str, token: str, serve: Callable[[dict[str, Any]], str],
                 timeout: float = 10.0):
        self.url = url
        self._serve = serve
        self._client = httpx.Client(timeout=timeout,
                                    headers={"authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._client.close()

    def health(self) -> tuple[int, dict[str, Any]]:
        answer = self._client.get(f"{self.url}/health")
        try:
            body = answer.json()
        except ValueError:
            body = {"error": answer.text[:300]}
        return answer.status_code, body

    def stats(self, since: float) -> dict[str, Any]:
        answer = self._client.get(f"{self.url}/-/stats", params={"since": since})
        answer.raise_for_status()
        return answer.json()

    def serve(self, table: dict[str, Any]) -> float:
        """Route by `table`; the router's clock when it serves it (a step's start)."""
        return self.wait_for(self._serve(table))

    def wait_for(self, version: str, deadline_s: float = 120.0) -> float:
        """Wait until the router answers with routing table `version` (Serve's proxy
        learns a new route, and the router its table, a moment after Serve says
        RUNNING); the router's clock then."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                _, body = self.health()
                if body.get("version") == version:
                    return float(body.get("now") or time.time())
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RayError(f"the router at {self.url} did not answer with its routing "
                               f"table within {deadline_s:g}s")
            time.sleep(0.2)


@dataclass(frozen=True)
class RolloutOutcome:
    error: str | None
    detail: str
    served: dict[str, Any]
    """The routing table served when the rollout ended."""
    rolled_back: bool = False


def roll_out(router: RouterClient, old: dict[str, Any], new: dict[str, Any],
             rollout: Rollout, rollback: Rollback, progress: Progress,
             sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic,
             resume_at: float | None = None) -> RolloutOutcome:
    """Move traffic from `old` (stable variants' table entries) to `new`, judging each
    step; `resume_at`: the share a held rollout reached, where it resumes."""
    steps = traffic_steps(rollout)
    if resume_at:
        resumed = [p for p in steps if p >= resume_at]
        if resumed != steps:
            progress(f"resuming the rollout at {resumed[0]}% of requests on the new variants")
        steps = resumed
    wait = seconds(rollout.wait)
    lines: list[str] = []
    for i, percent in enumerate(steps):
        label = _label(rollout, percent)
        split = routing(old, new, percent)
        try:
            since = router.serve(split)
        except (RayError, httpx.HTTPError) as e:
            return _back(router, old, f"{label}: the new variants could not be served: {e}",
                         lines, progress, rolled_back=False)
        progress(f"{label}: {percent}% of requests on the new variants", i / len(steps))
        sleep(wait)
        try:
            breach, window = _check(router, since, rollback)
            if breach is None and not conclusive(window, rollback):
                deadline = clock() + seconds(rollback.evidence_timeout)
                progress(f"{label}: waiting up to {rollback.evidence_timeout} for "
                         f"{rollback.min_requests} requests on the new variants")
                while breach is None and not conclusive(window, rollback) \
                        and clock() < deadline:
                    sleep(min(POLL_SECONDS, max(0.0, deadline - clock())))
                    breach, window = _check(router, since, rollback)
        except httpx.HTTPError as e:
            return _back(router, old, f"{label}: the router stopped answering ({e})", lines,
                         progress, rolled_back=False)
        lines.append(f"{label}: {describe(window, rollback)}")
        if breach is None and not conclusive(window, rollback):
            seen = (f"{label} is inconclusive: the new variants answered {answered(window)} "
                    f"requests in {rollback.evidence_timeout} (besides the step's wait), and "
                    f"rollback.min_requests asks for {rollback.min_requests}")
            fix = ("send traffic to the endpoint while it rolls out, lower "
                   "rollback.min_requests (0 promotes without evidence) or raise "
                   "rollback.evidence_timeout")
            if rollback.on_inconclusive == "hold":
                progress(f"held at {label}: too few requests to judge", 1.0)
                return RolloutOutcome(
                    f"{seen}; the traffic stays split with {percent}% of requests on the new "
                    f"variants (rollback.on_inconclusive: hold) and the next apply resumes "
                    f"the rollout at this step: {fix}", "\n".join(lines), split)
            return _back(router, old, f"rolled back: {seen}; traffic is back on the previous "
                                      f"variants: {fix}", lines, progress)
        if breach:
            return _back(router, old, f"rolled back at {label}: {breach}", lines, progress)
        progress(lines[-1], (i + 1) / len(steps))
    final = routing(new)
    try:
        router.serve(final)
    except (RayError, httpx.HTTPError) as e:
        return RolloutOutcome(f"every step passed, but making the new variants the only ones "
                              f"failed: {e}; the next apply repeats the rollout",
                              "\n".join(lines), routing(old, new, 100))
    return RolloutOutcome(None, "\n".join(lines), final)


def _back(router: RouterClient, old: dict[str, Any], why: str, lines: list[str],
          progress: Progress, rolled_back: bool = True) -> RolloutOutcome:
    """Every request back on the old variants; the rollout ends with `why`."""
    table = routing(old)
    try:
        router.serve(table)
    except (RayError, httpx.HTTPError) as e:
        return RolloutOutcome(f"{why}, and moving the traffic back to the previous variants "
                              f"failed: {e}", "\n".join(lines), table, rolled_back)
    progress(why, 1.0)
    return RolloutOutcome(why, "\n".join(lines), table, rolled_back)


def _check(router: RouterClient, since: float, rollback: Rollback
           ) -> tuple[str | None, dict[str, Any] | None]:
    status, body = router.health()
    window = router.stats(since)["tracks"].get(CANARY, {}).get("total")
    if status != 200 and rollback.on_health_check_failure:
        return f"health check failed: {body.get('error') or f'HTTP {status}'}", window
    return judge(window, rollback), window


def _label(rollout: Rollout, percent: int) -> str:
    if rollout.strategy == "all_at_once":
        return "the all_at_once step (100%)"
    return f"{rollout.strategy} step {percent}%"
