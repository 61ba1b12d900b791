"""Dispatches each verb to the handler of the resource's type.

A handler has the provider's verbs (diff, observe, create, update, delete) for one
resource type; handlers are imported lazily so that planning a stack does not
import torch.
"""

from __future__ import annotations

import importlib

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
    Provider,
    ProviderContext,
    TickRequest,
    TickResponse,
    UpdateRequest,
)

HANDLERS = {
    "dataset": "dataset:DatasetHandler",
    "feature_view": "feature_view:FeatureViewHandler",
    "training_job": "training.handler:TrainingJobHandler",
    "model": "registry.handler:ModelHandler",
    "endpoint": "serving.handler:EndpointHandler",
    "batch_job": "batch:BatchJobHandler",
    "monitor": "monitoring.handler:MonitorHandler",
    "retraining_policy": "retraining:RetrainingPolicyHandler",
}


class LocalProvider(Provider):
    resource_types = frozenset(HANDLERS)

    def __init__(self, ctx: ProviderContext):
        super().__init__(ctx)
        self._handlers: dict[str, object] = {}

    def handler(self, rtype: str):
        if rtype not in self._handlers:
            module, _, cls = HANDLERS[rtype].partition(":")
            mod = importlib.import_module(f"{__package__}.{module}")
            self._handlers[rtype] = getattr(mod, cls)(self.ctx)
        return self._handlers[rtype]

    def diff(self, req: DiffRequest) -> DiffResponse:
        return self.handler(req.resource.type).diff(req)

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        return self.handler(req.resource.type).observe(req)

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self.handler(req.resource.type).create(req, progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self.handler(req.resource.type).update(req, progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        return self.handler(req.resource.type).delete(req, progress)

    def tick(self, req: TickRequest) -> TickResponse | None:
        handler = self.handler(req.resource.type)
        tick = getattr(handler, "tick", None)
        return tick(req) if tick else None
