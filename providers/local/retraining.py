"""The `retraining_policy` resource on this machine: on each pass of `mlform watch`,
decide whether the policy's training job must run again, and why.

Triggers (any one suffices):
    monitor   that monitor's last evaluation found what `on` names (drift,
              performance or either), and is newer than the policy's last action
    schedule  this long has passed since the last action (or since the policy
              was created)
    new_data  the dataset's source file (relative to the stack) now hashes to a
              version other than the one in state, and not to one already acted on

`cooldown` is the least time between two actions: a trigger that fires sooner is
recorded as held back, and fires again on a later pass once the cooldown is over.
The policy acts by asking the engine to retrain (`TickResponse.retrain`); with
`action: record_only` it records and reports what it would have done.

Every decision, acted on or not, is appended to `policies/<name>/actions.jsonl`:

    {"t", "time", "acted": bool, "action", "reasons": [fired triggers],
     "checks": [one line per trigger], "held_by_cooldown_until": time | null}

Outputs: `last_action` (None until the policy first acts; then t, time, action,
reason, training_job, data: {dataset: digest acted on}), `created_at`, `actions`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import UTC, datetime
from typing import Any

from mlform.engine import durations
from mlform.engine.provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    ProviderContext,
    TickRequest,
    TickResponse,
    UpdateRequest,
    default_diff,
)
from mlform.engine.spec.models import RetrainingPolicy, Trigger
from pydantic import ValidationError

from .paths import LocalPaths

CONFIG = "config.json"
ACTIONS = "actions.jsonl"
DIGEST_CHARS = 12
ON = {"drift": {"drift"}, "performance": {"performance"}, "any": {"drift", "performance"}}


class RetrainingPolicyHandler:
    def __init__(self, ctx: ProviderContext):
        self.ctx = ctx
        self.paths = LocalPaths(ctx.data_dir)

    def diff(self, req: DiffRequest) -> DiffResponse:
        return default_diff(req)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        config = self.paths.policy(req.resource.name) / CONFIG
        if not config.exists():
            return ObserveResponse(exists=False)
        return ObserveResponse(exists=True, id=req.resource.name,
                               inputs=json.loads(config.read_text(encoding="utf-8")),
                               outputs=req.outputs)

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._configure(req.resource.name, req.inputs,
                               {"last_action": None, "created_at": time.time()})

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        prior = req.prior_outputs or {}
        return self._configure(req.resource.name, req.inputs,
                               {"last_action": prior.get("last_action"),
                                "created_at": prior.get("created_at", time.time())})

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        shutil.rmtree(self.paths.policy(req.resource.name), ignore_errors=True)
        return DeleteResponse()

    def tick(self, req: TickRequest) -> TickResponse:
        name = req.resource.name
        try:
            policy = _policy(req.inputs)
        except ValueError as err:
            return TickResponse(error=f"retraining policy '{name}': {err}")
        outputs = req.outputs or {}
        last = outputs.get("last_action")
        checks = [self._check(trigger, req, last) for trigger in policy.triggers]
        reasons = [why for fired, why, _ in checks if fired]
        decision: dict[str, Any] = {
            "t": req.now, "time": _iso(req.now), "acted": False, "action": policy.action,
            "reasons": reasons, "checks": [why for _, why, _ in checks],
            "held_by_cooldown_until": None}
        if not reasons:
            self._record(name, decision)
            return TickResponse()

        ready_at = last["t"] + durations.seconds(policy.cooldown) if last else req.now
        if req.now < ready_at:
            decision["held_by_cooldown_until"] = _iso(ready_at)
            self._record(name, decision)
            return TickResponse(events=[f"policy {name}: {'; '.join(reasons)}; held back by "
                                        f"the cooldown of {policy.cooldown} until "
                                        f"{_iso(ready_at)}"])

        decision["acted"] = True
        self._record(name, decision)
        reason = "; ".join(reasons)
        acted_on = {**((last or {}).get("data") or {}),
                    **{k: v for _, _, data in checks for k, v in data.items()}}
        action = {"t": req.now, "time": _iso(req.now), "action": policy.action,
                  "reason": reason, "training_job": policy.training_job, "data": acted_on}
        new_outputs = {**outputs, "last_action": action}
        if policy.action == "record_only":
            return TickResponse(outputs=new_outputs, events=[
                f"policy {name}: would retrain '{policy.training_job}' (record_only): {reason}"])
        return TickResponse(outputs=new_outputs, retrain=reason, events=[
            f"policy {name}: retraining '{policy.training_job}' ({policy.action}): {reason}"])

    def _check(self, trigger: Trigger, req: TickRequest,
               last: dict[str, Any] | None) -> tuple[bool, str, dict[str, str]]:
        """(fired, why in words, {dataset: digest} a new_data trigger fired on)."""
        if trigger.monitor:
            fired, why = _monitor_fired(trigger, req, last)
            return fired, why, {}
        if trigger.schedule:
            since = last["t"] if last else self._created_at(req)
            due = since + durations.seconds(trigger.schedule)
            if req.now >= due:
                return True, f"schedule {trigger.schedule}: last retrain {_iso(since)}", {}
            return False, f"schedule {trigger.schedule}: next at {_iso(due)}", {}
        return self._new_data(trigger.new_data, req, last)

    def _created_at(self, req: TickRequest) -> float:
        """When the policy was applied: from its outputs, else (an imported policy) when
        its configuration was written."""
        recorded = (req.outputs or {}).get("created_at")
        if recorded is not None:
            return recorded
        config = self.paths.policy(req.resource.name) / CONFIG
        return config.stat().st_mtime if config.exists() else req.now

    def _new_data(self, dataset: str, req: TickRequest,
                  last: dict[str, Any] | None) -> tuple[bool, str, dict[str, str]]:
        source = req.stack_inputs.get(dataset, {}).get("source")
        version = req.stack_outputs.get(dataset, {}).get("version")
        if not isinstance(source, str) or version is None:
            return False, f"new data in {dataset}: the dataset is not applied yet", {}
        if "://" in source:
            return False, (f"new data in {dataset}: '{source}' is remote, its changes show "
                           "in `mlform plan`"), {}
        path = self.ctx.stack_dir / source
        if not path.is_file():
            return False, f"new data in {dataset}: source '{source}' is missing", {}
        with path.open("rb") as data:
            digest = hashlib.file_digest(data, "sha256").hexdigest()[:DIGEST_CHARS]
        if digest == version:
            return False, f"new data in {dataset}: unchanged ({version})", {}
        if ((last or {}).get("data") or {}).get(dataset) == digest:
            return False, f"new data in {dataset}: {digest} already acted on", {}
        return True, f"new data in {dataset}: '{source}' is {digest}, state has {version}", \
            {dataset: digest}

    def _record(self, name: str, decision: dict[str, Any]) -> None:
        path = self.paths.policy(name) / ACTIONS
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(decision, sort_keys=True) + "\n")

    def _configure(self, name: str, inputs: dict[str, Any],
                   outputs: dict[str, Any]) -> ApplyResponse:
        try:
            _policy(inputs)
        except ValueError as err:
            return ApplyResponse(error=f"retraining policy '{name}': {err}")
        directory = self.paths.policy(name)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG).write_text(json.dumps(inputs, indent=2, sort_keys=True),
                                        encoding="utf-8")
        return ApplyResponse(id=name, outputs={**outputs, "actions": str(directory / ACTIONS)})


def _monitor_fired(trigger: Trigger, req: TickRequest,
                   last: dict[str, Any] | None) -> tuple[bool, str]:
    evaluation = req.stack_outputs.get(trigger.monitor, {}).get("last_evaluation")
    if not evaluation:
        return False, f"monitor {trigger.monitor}: not evaluated yet"
    verdict = evaluation["verdict"]
    found = ON[trigger.on] & set(evaluation.get("breaches") or [verdict])
    if not found:
        return False, f"monitor {trigger.monitor}: {verdict.replace('_', ' ')} at {evaluation['time']}"
    if last and evaluation["t"] <= last["t"]:
        return False, (f"monitor {trigger.monitor}: {verdict} at {evaluation['time']} was "
                       "already acted on")
    detail = ", ".join(evaluation.get("drifted_features") or []) if "drift" in found else ""
    return True, (f"monitor {trigger.monitor} found {' and '.join(sorted(found))} at "
                  f"{evaluation['time']}" + (f" ({detail})" if detail else ""))


def _policy(inputs: dict[str, Any]) -> RetrainingPolicy:
    try:
        return RetrainingPolicy.model_validate({**inputs, "type": "retraining_policy"})
    except ValidationError as err:
        raise ValueError(str(err)) from err


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
