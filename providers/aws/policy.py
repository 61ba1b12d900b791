"""Retraining policies: recorded only; `mlform watch` acts on them, as for local."""

from __future__ import annotations

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
        return ApplyResponse(id=req.resource.name, outputs={"last_action": None})

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        self.spec(req.inputs)
        return ApplyResponse(id=req.resource.name, outputs=req.prior_outputs)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        return ObserveResponse(exists=req.outputs is not None, id=req.resource.name,
                               outputs=req.outputs)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        return DeleteResponse()
