"""Moving traffic from the variants being served to new ones, step by step, with rollback.

The new variants are loaded beside the old ones and take a growing share of
the requests (`canary`: the listed percentages; `linear`: `step_percent` more at
each step; `all_at_once`: 100 at once). After `wait` at each step, the requests
the new variants answered during that step are judged against the rollback
bounds; a breach sends every request back to the old variants and ends the
rollout with the measured values next to the bounds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from mlform.engine.durations import seconds
from mlform.engine.provider import Progress
from mlform.engine.spec.models import Rollback, Rollout

from .client import ControlError, ServerClient
from .config import ServingConfig
from .router import CANARY


def traffic_steps(rollout: Rollout) -> list[int]:
    """Percent of requests on the new variants at each step, ending at 100."""
    if rollout.strategy == "all_at_once":
        return [100]
    if rollout.strategy == "linear":
        if not 1 <= rollout.step_percent <= 100:
            raise ValueError(f"rollout.step_percent is {rollout.step_percent}; it must be "
                             "between 1 and 100")
        steps = list(range(rollout.step_percent, 100, rollout.step_percent))
        return steps + [100]
    steps = list(rollout.steps)
    if any(not 1 <= s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise ValueError(f"rollout.steps is {steps}; it must be increasing percentages "
                         "between 1 and 100, e.g. [10, 50, 100]")
    return steps if steps and steps[-1] == 100 else steps + [100]


def judge(window: dict | None, rollback: Rollback) -> str | None:
    """The breached bound, in words with the measured value, or None.

    `window` is the new variants' {"requests", "errors", "p99_ms"} during the step.
    """
    if not window or window["requests"] == 0 or window["requests"] < rollback.min_requests:
        return None
    requests, errors = window["requests"], window["errors"]
    rate = errors / requests
    if rollback.max_error_rate is not None and rate > rollback.max_error_rate:
        return (f"error rate {rate:.3f} ({errors} of {requests} requests) > "
                f"{rollback.max_error_rate:g}")
    p99 = window["p99_ms"]
    if rollback.max_p99_latency_ms is not None and p99 > rollback.max_p99_latency_ms:
        return f"p99 latency {p99:.1f} ms > {rollback.max_p99_latency_ms:g} ms"
    return None


def describe(window: dict | None, rollback: Rollback) -> str:
    if not window or window["requests"] == 0:
        return "no requests on the new variants"
    text = (f"{window['requests']} requests, {window['errors']} errors, "
            f"p99 {window['p99_ms']:.1f} ms")
    if window["requests"] < rollback.min_requests:
        text += f" (not judged: fewer than min_requests {rollback.min_requests})"
    return text


@dataclass(frozen=True)
class RolloutOutcome:
    error: str | None
    """Why the rollout stopped (traffic is back on the old variants), or None."""
    detail: str
    """One line per step: its share and what was measured."""


def roll_out(client: ServerClient, current: ServingConfig, target: ServingConfig,
             rollout: Rollout, rollback: Rollback, progress: Progress,
             sleep: Callable[[float], None] = time.sleep) -> RolloutOutcome:
    """Move traffic from `current`'s stable variants to `target`'s, judging each step."""
    steps = traffic_steps(rollout)
    wait = seconds(rollout.wait)
    old = current.settled()
    lines: list[str] = []
    for i, percent in enumerate(steps):
        label = _step_label(rollout, percent)
        since = time.time()
        try:
            client.serve(old.with_canary(target.stable, percent))
        except (httpx.HTTPError, ControlError) as e:
            return RolloutOutcome(f"{label}: the new variants could not be served, traffic "
                                  f"stays on the previous ones: {e}", "\n".join(lines))
        progress(f"{label}: {percent}% of requests on the new variants", i / len(steps))
        sleep(wait)
        try:
            breach, window = _check(client, since, rollback)
        except httpx.HTTPError as e:
            return RolloutOutcome(f"{label}: the server stopped answering ({e}); run "
                                  "`mlform apply` again to restart it", "\n".join(lines))
        lines.append(f"{label}: {describe(window, rollback)}")
        if breach:
            try:
                client.serve(old)
            except (httpx.HTTPError, ControlError) as e:
                return RolloutOutcome(f"{label}: {breach}, and moving the traffic back to the "
                                      f"previous variants failed: {e}", "\n".join(lines))
            progress(f"rolled back at {label}: {breach}", 1.0)
            return RolloutOutcome(f"rolled back at {label}: {breach}", "\n".join(lines))
        progress(lines[-1], (i + 1) / len(steps))
    try:
        client.serve(target)
    except (httpx.HTTPError, ControlError) as e:
        return RolloutOutcome(f"every step passed, but making the new variants the only ones "
                              f"failed: {e}; the next apply repeats the rollout", "\n".join(lines))
    return RolloutOutcome(None, "\n".join(lines))


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
