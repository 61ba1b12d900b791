"""Retraining policies: recorded in state only. `mlform watch` decides them in the
engine, as for every provider (mlform.ml.retraining), and retrains by a targeted
apply; nothing about a policy lives in the Azure ML workspace."""

from __future__ import annotations

import time

from mlform.engine.provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    UpdateRequest,
)

from .handler import Handler


class RetrainingPolicyHandler(Handler):
    rtype = "retraining_policy"

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        self.spec(req.inputs)  # a policy that does not validate is refused here
        # A schedule counts from here until the policy first acts.
        return ApplyResponse(id=req.resource.name,
                             outputs={"last_action": None, "created_at": time.time()})

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        self.spec(req.inputs)
        prior = req.prior_outputs or {}
        return ApplyResponse(id=req.resource.name,
                             outputs={**prior, "created_at": prior.get("created_at", time.time())})

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        return ObserveResponse(exists=req.outputs is not None, id=req.resource.name,
                               outputs=req.outputs)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        return DeleteResponse()
