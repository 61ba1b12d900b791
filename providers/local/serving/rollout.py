"""Moving traffic from the variants being served to new ones, step by step, with rollback.

The new variants are loaded beside the old ones and take a growing share of
the requests (`canary`: the listed percentages; `linear`: `step_percent` more at
each step; `all_at_once`: 100 at once). After `wait` at each step, the requests
the new variants answered during that step are judged against the rollback
bounds; a breach sends every request back to the old variants and ends the
rollout with the measured values next to the bounds.

A step is judged only on evidence: until the new variants have answered
`rollback.min_requests` requests in it, the step keeps waiting (polling the
server's statistics), for up to `rollback.evidence_timeout` beyond `wait`. A step
still short of them then is inconclusive and the rollout fails: traffic goes back
to the old variants (`on_inconclusive: rollback`) or stays split where it is
(`hold`) for the next apply to resume at that step. Nothing is promoted without
evidence unless `min_requests: 0` says so, and the step's line then says it.
Requests refused as the client's fault are no evidence (see `stats`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from mlform.engine.durations import seconds
from mlform.engine.provider import Progress
from mlform.engine.spec.models import Rollback, Rollout
from mlform.ml.serving.judging import answered, conclusive, describe, judge, traffic_steps

from .client import ControlError, ServerClient
from .config import ServingConfig
from .router import CANARY

POLL_SECONDS = 0.5
"""How often a step short of evidence asks the server again."""


@dataclass(frozen=True)
class RolloutOutcome:
    error: str | None
    """Why the rollout stopped, or None."""
    detail: str
    """One line per step: its share and what was measured."""
    served: ServingConfig | None = None
    """What the server serves now, when the rollout stopped with the traffic split
    (`on_inconclusive: hold`); None when it serves the old or the new variants alone."""
    rolled_back: bool = False
    """The rollout was judged and sent back to the old variants (a breach, or a step
    short of evidence with `on_inconclusive: rollback`)."""


def roll_out(client: ServerClient, current: ServingConfig, target: ServingConfig,
             rollout: Rollout, rollback: Rollback, progress: Progress,
             sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> RolloutOutcome:
    """Move traffic from `current`'s stable variants to `target`'s, judging each step.

    When `current` holds a canary of exactly `target`'s variants (a rollout held or
    interrupted earlier), the rollout resumes at the step it had reached."""
    steps = traffic_steps(rollout)
    wait = seconds(rollout.wait)
    old = current.settled()
    if current.canary is not None and current.canary == target.stable:
        resumed = [p for p in steps if p >= current.canary_percent]
        if resumed != steps:
            progress(f"resuming the rollout at {resumed[0]}% of requests on the new variants")
        steps = resumed
    lines: list[str] = []
    for i, percent in enumerate(steps):
        label = _step_label(rollout, percent)
        since = time.time()
        try:
            client.serve(old.with_canary(target.stable, percent, target.online_store))
        except (httpx.HTTPError, ControlError) as e:
            return RolloutOutcome(f"{label}: the new variants could not be served, traffic "
                                  f"stays on the previous ones: {e}", "\n".join(lines))
        progress(f"{label}: {percent}% of requests on the new variants", i / len(steps))
        sleep(wait)
        try:
            breach, window = _check(client, since, rollback)
            if breach is None and not conclusive(window, rollback):
                breach, window = _await_evidence(client, since, rollback, label, progress,
                                                 sleep, clock)
        except httpx.HTTPError as e:
            return RolloutOutcome(f"{label}: the server stopped answering ({e}); run "
                                  "`mlform apply` again to restart it", "\n".join(lines))
        lines.append(f"{label}: {describe(window, rollback)}")
        if breach is None and not conclusive(window, rollback):
            return _inconclusive(client, old, target, label, percent, window, rollback,
                                 lines, progress)
        if breach:
            return _back(client, old, f"rolled back at {label}: {breach}", lines, progress)
        progress(lines[-1], (i + 1) / len(steps))
    try:
        client.serve(target)
    except (httpx.HTTPError, ControlError) as e:
        return RolloutOutcome(f"every step passed, but making the new variants the only ones "
                              f"failed: {e}; the next apply repeats the rollout", "\n".join(lines))
    return RolloutOutcome(None, "\n".join(lines))


def _await_evidence(client: ServerClient, since: float, rollback: Rollback, label: str,
                    progress: Progress, sleep: Callable[[float], None],
                    clock: Callable[[], float]) -> tuple[str | None, dict | None]:
    """Poll the step's statistics until it is conclusive, breached, or out of time."""
    deadline = clock() + seconds(rollback.evidence_timeout)
    progress(f"{label}: waiting up to {rollback.evidence_timeout} for "
             f"{rollback.min_requests} requests on the new variants")
    while True:
        breach, window = _check(client, since, rollback)
        if breach is not None or conclusive(window, rollback) or clock() >= deadline:
            return breach, window
        sleep(min(POLL_SECONDS, max(0.0, deadline - clock())))


def _inconclusive(client: ServerClient, old: ServingConfig, target: ServingConfig,
                  label: str, percent: int, window: dict | None, rollback: Rollback, lines: list[str],
                  progress: Progress) -> RolloutOutcome:
    seen = (f"{label} is inconclusive: the new variants answered {answered(window)} "
            f"requests in {rollback.evidence_timeout} (besides the step's wait), and "
            f"rollback.min_requests asks for {rollback.min_requests}")
    fix = ("send traffic to the endpoint while it rolls out, lower rollback.min_requests "
           "(0 promotes without evidence) or raise rollback.evidence_timeout")
    if rollback.on_inconclusive == "hold":
        held = old.with_canary(target.stable, percent, target.online_store)
        progress(f"held at {label}: too few requests to judge", 1.0)
        return RolloutOutcome(
            f"{seen}; the traffic stays split with {percent}% of requests on the new "
            f"variants (rollback.on_inconclusive: hold) and the next apply resumes the "
            f"rollout at this step: {fix}", "\n".join(lines), served=held)
    return _back(client, old, f"rolled back: {seen}; traffic is back on the previous "
                              f"variants: {fix}", lines, progress)


def _back(client: ServerClient, old: ServingConfig, why: str, lines: list[str],
          progress: Progress) -> RolloutOutcome:
    """Every request back on the old variants; the rollout ends with `why`."""
    try:
        client.serve(old)
    except (httpx.HTTPError, ControlError) as e:
        return RolloutOutcome(f"{why}, and moving the traffic back to the previous variants "
                              f"failed: {e}", "\n".join(lines), rolled_back=True)
    progress(why, 1.0)
    return RolloutOutcome(why, "\n".join(lines), rolled_back=True)


def _check(client: ServerClient, since: float, rollback: Rollback) -> tuple[str | None, dict]:
    status, body = client.health()
    window = client.stats(since)["tracks"].get(CANARY, {}).get("total")
    if status != 200 and rollback.on_health_check_failure:
        return f"health check failed: {body.get('error') or f'HTTP {status}'}", window
    return judge(window, rollback), window


def _step_label(rollout: Rollout, percent: int) -> str:
    if rollout.strategy == "all_at_once":
        return "the all_at_once step (100%)"
    return f"{rollout.strategy} step {percent}%"
