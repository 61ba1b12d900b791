"""Deciding a retraining policy on one pass, the same way on every provider: the
decision is `mlform.ml.retraining.decide`, on what the state records (monitors'
evaluations, datasets' versions, the policy's last action) and the datasets' sources
now. The provider is then asked only to record it on its platform, if it keeps a
log (a `TickRequest` carrying `decision`); a provider without `tick` records nothing.
"""

from __future__ import annotations

import calendar
import time
from pathlib import Path
from typing import Any

from mlform.ml.retraining import Observed, decide, parse_policy

from ..provider import TickRequest, TickResponse
from .data_versions import data_version


def decide_policy(provider, res, req: TickRequest, stack_dir: Path) -> TickResponse:
    """The policy's decision as a tick's response: its new `last_action` (when it acted),
    its events, and `retrain` (the reason) when the training job must run again."""
    name = req.resource.name
    try:
        policy = parse_policy(req.inputs)
    except ValueError as err:
        return TickResponse(error=f"retraining policy '{name}': {err}")
    outputs = req.outputs or {}
    watched = {t.new_data for t in policy.triggers if t.new_data}
    seen = Observed(
        now=req.now, created_at=_created_at(outputs, res, req.now),
        last_action=outputs.get("last_action"),
        evaluations={t.monitor: req.stack_outputs.get(t.monitor, {}).get("last_evaluation")
                     for t in policy.triggers if t.monitor},
        data={d: data_version(stack_dir, req.stack_inputs.get(d), req.stack_outputs.get(d))
              for d in watched})
    decision = decide(name, policy, seen)
    recorded = provider.tick(TickRequest(
        resource=req.resource, inputs=req.inputs, outputs=outputs,
        stack_outputs=req.stack_outputs, stack_inputs=req.stack_inputs, now=req.now,
        decision=decision.record))
    events = list(decision.events) + (list(recorded.events) if recorded else [])
    error = recorded.error if recorded else None
    if not decision.acted:
        return TickResponse(events=events, error=error)
    return TickResponse(outputs={**outputs, "last_action": decision.last_action},
                        events=events, retrain=decision.retrain, error=error)


def _created_at(outputs: dict[str, Any], res, now: float) -> float:
    """When the policy was applied: from its outputs, else (a policy imported, or made
    by a provider that does not record it) when its state entry was last written."""
    recorded = outputs.get("created_at")
    if isinstance(recorded, int | float):
        return float(recorded)
    written = getattr(res, "updated_at", "")
    if written:
        try:
            return float(calendar.timegm(time.strptime(written, "%Y-%m-%dT%H:%M:%SZ")))
        except ValueError:
            pass
    return now
