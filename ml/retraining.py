"""Retraining-policy decisions: whether a policy retrains now, and why, as a pure
function of what the controller observed (no I/O, no clock).

Triggers (any one suffices):
    monitor   that monitor's last evaluation found what `on` names (drift,
              performance or either), and is newer than the policy's last action
    schedule  this long has passed since the last action (or since the policy
              was created)
    new_data  the dataset's source now has a version other than the one in state,
              and not one already acted on

`cooldown` is the least time between two actions: a trigger that fires sooner is
held back, and fires again on a later pass once the cooldown is over. With
`action: record_only` the decision is recorded and reported, and nothing retrains.

The engine runs `decide` for every provider's retraining policies (see
`mlform.engine.controller.policies`); a provider only records the decision on its
platform if it keeps such a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mlform.engine import durations
from mlform.engine.spec.models import RetrainingPolicy, Trigger
from pydantic import ValidationError

ON = {"drift": {"drift"}, "performance": {"performance"}, "any": {"drift", "performance"}}

DataStatus = Literal["read", "not_applied", "remote", "missing"]


@dataclass(frozen=True)
class DataVersion:
    """What the controller found at a `new_data` trigger's dataset."""

    status: DataStatus
    source: str | None = None
    """The dataset's `source` as written in its inputs."""
    recorded: str | None = None
    """The version in state (what was last applied)."""
    current: str | None = None
    """The source's version now; set when `status` is `read`."""


@dataclass(frozen=True)
class Observed:
    """Everything a decision depends on, as the controller observed it on one pass."""

    now: float
    created_at: float
    """When the policy was applied: a schedule counts from it until the first action."""
    last_action: dict[str, Any] | None = None
    """The policy's `last_action` output: t, time, action, reason, training_job, data."""
    evaluations: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    """Each monitor's `last_evaluation` output, by name."""
    data: Mapping[str, DataVersion] = field(default_factory=dict)
    """Each `new_data` trigger's dataset, by name."""


@dataclass(frozen=True)
class Decision:
    acted: bool
    """A trigger fired and the cooldown was over: `last_action` is new."""
    retrain: str | None
    """The reason to re-run the training job now (None for record_only or no action)."""
    last_action: dict[str, Any] | None
    """The new `last_action` output when `acted`; None otherwise."""
    events: tuple[str, ...]
    """What happened, one line each, for the person watching."""
    record: dict[str, Any]
    """The decision as one log line: t, time, acted, action, reasons, checks (one line
    per trigger), held_by_cooldown_until."""


def parse_policy(inputs: Mapping[str, Any]) -> RetrainingPolicy:
    """The policy from its recorded inputs; ValueError saying what is wrong."""
    try:
        return RetrainingPolicy.model_validate({**inputs, "type": "retraining_policy"})
    except ValidationError as err:
        raise ValueError(str(err)) from err


def decide(name: str, policy: RetrainingPolicy, seen: Observed) -> Decision:
    """Whether policy `name` acts on this pass, and why (see the module docstring)."""
    last = seen.last_action
    checks = [_check(trigger, seen) for trigger in policy.triggers]
    reasons = [why for fired, why, _ in checks if fired]
    record: dict[str, Any] = {
        "t": seen.now, "time": iso(seen.now), "acted": False, "action": policy.action,
        "reasons": reasons, "checks": [why for _, why, _ in checks],
        "held_by_cooldown_until": None}
    if not reasons:
        return Decision(False, None, None, (), record)

    ready_at = last["t"] + durations.seconds(policy.cooldown) if last else seen.now
    if seen.now < ready_at:
        record["held_by_cooldown_until"] = iso(ready_at)
        return Decision(False, None, None, (
            f"policy {name}: {'; '.join(reasons)}; held back by the cooldown of "
            f"{policy.cooldown} until {iso(ready_at)}",), record)

    record["acted"] = True
    reason = "; ".join(reasons)
    # What a new_data trigger acted on is remembered, so that the same change never
    # fires twice; other datasets keep what an earlier action acted on.
    acted_on = {**((last or {}).get("data") or {}),
                **{k: v for _, _, data in checks for k, v in data.items()}}
    action = {"t": seen.now, "time": iso(seen.now), "action": policy.action,
              "reason": reason, "training_job": policy.training_job, "data": acted_on}
    if policy.action == "record_only":
        return Decision(True, None, action, (
            f"policy {name}: would retrain '{policy.training_job}' (record_only): {reason}",),
            record)
    return Decision(True, reason, action, (
        f"policy {name}: retraining '{policy.training_job}' ({policy.action}): {reason}",),
        record)


def _check(trigger: Trigger, seen: Observed) -> tuple[bool, str, dict[str, str]]:
    """(fired, why in words, {dataset: version} a new_data trigger fired on)."""
    last = seen.last_action
    if trigger.monitor:
        fired, why = _monitor_fired(trigger, seen.evaluations.get(trigger.monitor), last)
        return fired, why, {}
    if trigger.schedule:
        since = last["t"] if last else seen.created_at
        due = since + durations.seconds(trigger.schedule)
        if seen.now >= due:
            return True, f"schedule {trigger.schedule}: last retrain {iso(since)}", {}
        return False, f"schedule {trigger.schedule}: next at {iso(due)}", {}
    assert trigger.new_data is not None  # a trigger has exactly one kind
    return _new_data(trigger.new_data, seen.data.get(trigger.new_data), last)


def _monitor_fired(trigger: Trigger, evaluation: dict[str, Any] | None,
                   last: dict[str, Any] | None) -> tuple[bool, str]:
    if not evaluation:
        return False, f"monitor {trigger.monitor}: not evaluated yet"
    verdict = evaluation["verdict"]
    found = ON[trigger.on] & set(evaluation.get("breaches") or [verdict])
    if not found:
        return False, f"monitor {trigger.monitor}: {verdict.replace('_', ' ')} at " \
                      f"{evaluation['time']}"
    if last and evaluation["t"] <= last["t"]:
        return False, (f"monitor {trigger.monitor}: {verdict} at {evaluation['time']} was "
                       "already acted on")
    detail = ", ".join(evaluation.get("drifted_features") or []) if "drift" in found else ""
    return True, (f"monitor {trigger.monitor} found {' and '.join(sorted(found))} at "
                  f"{evaluation['time']}" + (f" ({detail})" if detail else ""))


def _new_data(dataset: str, data: DataVersion | None,
              last: dict[str, Any] | None) -> tuple[bool, str, dict[str, str]]:
    if data is None or data.status == "not_applied":
        return False, f"new data in {dataset}: the dataset is not applied yet", {}
    if data.status == "remote":
        return False, (f"new data in {dataset}: '{data.source}' is remote, its changes show "
                       "in `mlform plan`"), {}
    if data.status == "missing":
        return False, f"new data in {dataset}: source '{data.source}' is missing", {}
    if data.current == data.recorded:
        return False, f"new data in {dataset}: unchanged ({data.recorded})", {}
    if ((last or {}).get("data") or {}).get(dataset) == data.current:
        return False, f"new data in {dataset}: {data.current} already acted on", {}
    assert data.current is not None
    return True, (f"new data in {dataset}: '{data.source}' is {data.current}, state has "
                  f"{data.recorded}"), {dataset: data.current}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
