"""The aws provider: each verb goes to the handler of the resource's type.

Handlers are imported on first use; boto3 is imported when the first client is made.
Every AWS failure becomes a response error in words (see errors.py), never a raise.
"""

from __future__ import annotations

import threading
from typing import Any

from mlform.engine.dispatch import DispatchingProvider
from mlform.engine.provider import Problem, ProviderContext

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


class AwsProvider(DispatchingProvider):
    resource_types = frozenset(HANDLERS)
    handlers = HANDLERS
    handler_package = __package__

    def __init__(self, ctx: ProviderContext):
        super().__init__(ctx)
        self._clients: Any = None
        self._clients_lock = threading.Lock()  # verbs on parallel threads share one set

    def validate_config(self) -> list[Problem]:
        return aws_config.problems(self.ctx.config)

    @property
    def clients(self) -> Any:
        with self._clients_lock:
            if self._clients is None:
                from .clients import Clients

                problems = self.validate_config()
                if problems:
                    raise AwsError(f"provider '{self.ctx.provider_name}' is misconfigured: "
                                   + "; ".join(map(str, problems)))
                self._clients = Clients(aws_config.load(self.ctx.config))
            return self._clients

    def make_handler(self, cls: type) -> Any:
        return cls(self.ctx, self.clients.cfg, self.clients)

    def failure(self, exc: Exception, req: Any) -> str | None:
        if isinstance(exc, AwsError | ValueError):
            return str(exc)
        if type(exc).__module__.startswith(("botocore", "boto3")):
            return explain(exc, req.resource.name)
        return None

    def list_owned(self) -> list[tuple[str, str]]:
        from .ownership import list_owned

        return list_owned(self.ctx.stack, self.clients)

    def close(self) -> None:
        if self._clients is not None:
            self._clients.close()
