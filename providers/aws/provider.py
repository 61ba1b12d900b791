"""The aws provider: dispatches each verb to the handler of the resource's type.

Handlers are imported on first use; boto3 is imported when the first client is made.
Every AWS failure becomes a response error in words (see errors.py), never a raise.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

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

from . import config as aws_config
from .errors import AwsError, explain

HANDLERS = {
    "dataset": "dataset:DatasetHandler",
    "training_job": "training:TrainingJobHandler",
    "model": "model:ModelHandler",
    "endpoint": "endpoint:EndpointHandler",
    "batch_job": "batch:BatchJobHandler",
    "monitor": "monitor:MonitorHandler",
    "retraining_policy": "policy:RetrainingPolicyHandler",
}


class AwsProvider(Provider):
    resource_types = frozenset(HANDLERS)

    def __init__(self, ctx: ProviderContext):
        super().__init__(ctx)
        self._handlers: dict[str, Any] = {}
        self._clients: Any = None

    def validate_config(self) -> list[str]:
        return aws_config.problems(self.ctx.config)

    @property
    def clients(self) -> Any:
        if self._clients is None:
            from .clients import Clients

            problems = self.validate_config()
            if problems:
                raise AwsError(f"provider '{self.ctx.provider_name}' is misconfigured: "
                               + "; ".join(problems))
            self._clients = Clients(aws_config.load(self.ctx.config))
        return self._clients

    def handler(self, rtype: str) -> Any:
        if rtype not in self._handlers:
            if rtype not in HANDLERS:
                raise AwsError(f"the aws provider does not realise '{rtype}' resources")
            module, _, cls = HANDLERS[rtype].partition(":")
            mod = importlib.import_module(f"{__package__}.{module}")
            self._handlers[rtype] = getattr(mod, cls)(self.ctx, self.clients.cfg, self.clients)
        return self._handlers[rtype]

    def _run(self, verb: str, req: Any, failed: Callable[[str], Any], *args: Any) -> Any:
        try:
            return getattr(self.handler(req.resource.type), verb)(req, *args)
        except AwsError as exc:
            return failed(str(exc))
        except Exception as exc:
            if type(exc).__module__.startswith(("botocore", "boto3")):
                return failed(explain(exc, req.resource.name))
            raise

    def diff(self, req: DiffRequest) -> DiffResponse:
        return self._run("diff", req, lambda e: DiffResponse(error=e))

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        return self._run("observe", req, lambda e: ObserveResponse(exists=False, error=e))

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        return self._run("create", req, lambda e: ApplyResponse(error=e), progress)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        return self._run("update", req, lambda e: ApplyResponse(error=e), progress)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        return self._run("delete", req, lambda e: DeleteResponse(error=e), progress)

    def tick(self, req: TickRequest) -> TickResponse | None:
        handler = self.handler(req.resource.type)
        if not hasattr(handler, "tick"):
            return None
        return self._run("tick", req, lambda e: TickResponse(error=e))

    def list_owned(self) -> list[tuple[str, str]]:
        from .ownership import list_owned

        return list_owned(self.ctx.stack, self.clients)

    def close(self) -> None:
        if self._clients is not None:
            self._clients.close()
