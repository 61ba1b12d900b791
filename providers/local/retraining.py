"""The `retraining_policy` resource on this machine: its configuration on disk, and the
log of the decisions `mlform watch` makes for it.

The decision itself (triggers, cooldown, record_only) is the engine's, the same for
every provider (`mlform.ml.retraining`); on each pass the engine hands it to `tick`,
which appends it to `policies/<name>/actions.jsonl`:

    {"t", "time", "acted": bool, "action", "reasons": [fired triggers],
     "checks": [one line per trigger], "held_by_cooldown_until": time | null}

Outputs: `last_action` (None until the policy first acts; then t, time, action,
reason, training_job, data: {dataset: digest acted on}), `created_at`, `actions`.
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

from mlform.engine.dispatch import ResourceHandler
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
from mlform.ml.retraining import parse_policy

from .paths import LocalPaths

CONFIG = "config.json"
ACTIONS = "actions.jsonl"


class RetrainingPolicyHandler(ResourceHandler):
    rtype = "retraining_policy"

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

    def tick(self, req: TickRequest) -> TickResponse | None:
        """Append the engine's decision on this pass to the policy's log."""
        if req.decision is None:
            return None
        path = self.paths.policy(req.resource.name) / ACTIONS
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(req.decision, sort_keys=True) + "\n")
        return TickResponse()

    def _configure(self, name: str, inputs: dict[str, Any],
                   outputs: dict[str, Any]) -> ApplyResponse:
        try:
            parse_policy(inputs)
        except ValueError as err:
            return ApplyResponse(error=f"retraining policy '{name}': {err}")
        directory = self.paths.policy(name)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG).write_text(json.dumps(inputs, indent=2, sort_keys=True),
                                        encoding="utf-8")
        return ApplyResponse(id=name, outputs={**outputs, "actions": str(directory / ACTIONS)})
