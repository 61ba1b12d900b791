"""Judging a rollout step: the share of requests at each step, and whether what the
new variants answered during a step breaches the endpoint's `rollback` bounds, is
enough evidence to judge (`rollback.min_requests`), and how to say so.

Every provider that steps traffic itself judges with these, so a canary rolls back
on the same numbers on each. A step's window is the new variants'
`{"requests", "errors", "client_errors", "p99_ms"}` (`stats.Window`) since it began.
"""

from __future__ import annotations

from mlform.engine.spec.models import Rollback, Rollout


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
    """The breached bound, in words with the measured value, or None (also when the
    window is too small to judge: see `conclusive`).

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


def answered(window: dict | None) -> int:
    return window["requests"] if window else 0


def conclusive(window: dict | None, rollback: Rollback) -> bool:
    """Whether the step saw enough requests on the new variants to be judged."""
    return answered(window) >= rollback.min_requests


def describe(window: dict | None, rollback: Rollback) -> str:
    client_errors = (window or {}).get("client_errors") or 0
    if window is None or answered(window) == 0:
        text = "no requests on the new variants"
    else:
        text = (f"{window['requests']} requests, {window['errors']} errors, "
                f"p99 {window['p99_ms']:.1f} ms")
    if client_errors:
        text += f", {client_errors} client errors (not counted)"
    if rollback.min_requests == 0:
        text += " (promoted without evidence: rollback.min_requests is 0)"
    elif not conclusive(window, rollback):
        text += f" (inconclusive: fewer than min_requests {rollback.min_requests})"
    return text
