"""The azure provider: each verb goes to the handler of the resource's type.

Handlers are imported on first use; the Azure libraries when the first client is made.
Every Azure failure becomes a response error in words (see errors.py), never a raise.
"""

from __future__ import annotations

import threading
from typing import Any

from mlform.engine.capabilities import TypeSupport, Unsupported
from mlform.engine.dispatch import DispatchingProvider
from mlform.engine.provider import Problem, ProviderContext

from . import config as azure_config
from .errors import AzureError, explain, is_azure_error

HANDLERS = {
    "dataset": "dataset:DatasetHandler",
    "training_job": "training:TrainingJobHandler",
    "model": "model:ModelHandler",
    "endpoint": "endpoint:EndpointHandler",
    "batch_job": "batch:BatchJobHandler",
    "monitor": "monitor:MonitorHandler",
    "retraining_policy": "policy:RetrainingPolicyHandler",
}


BYOM_HELP = ("registering a model file (`source:`) is implemented on the local provider so "
             "far: register it there, or train it with a training_job")

CAPABILITIES = {
    "dataset": TypeSupport(outputs=frozenset({"uri", "version", "path", "rows", "columns"})),
    "training_job": TypeSupport(
        outputs=frozenset({"artifact", "run_id", "metrics", "device", "device_note",
                           "code_digest"}),
        unsupported=(Unsupported(("feature_view",), "train on a dataset resource's `uri`: "
                                                    "the azure provider has no feature store"),
                     Unsupported(("labels",), "put the target column in the dataset"))),
    "model": TypeSupport(
        outputs=frozenset({"uri", "name", "version", "gates"}),
        unsupported=(Unsupported(("retirement",), "the Azure ML model registry keeps every "
                                                  "version; archive old ones there",
                                  noop=True),
                     Unsupported(("source",), BYOM_HELP))),
    "endpoint": TypeSupport(
        outputs=frozenset({"url", "name", "traffic"}),
        unsupported=(
            Unsupported(("feature_view",), "send full feature rows to the endpoint, or serve "
                                           "this endpoint with the local provider"),
            Unsupported(("rollback", "on_health_check_failure"),
                        "a managed online endpoint's health is the platform's; the rollout "
                        "judges error rate and latency", noop=True),
            *(Unsupported(("logging", f), "the scoring script writes its request log to "
                                          "blob in batches of its own size", noop=True)
              for f in ("max_rows", "max_bytes")),
            Unsupported(("limits",), "managed online endpoints set their own request limits "
                                     "(request_settings)", noop=True),
            Unsupported(("experiment", "key"),
                        "the endpoint's traffic draws each request's deployment at random, so "
                        "a request's key does not choose its variant; for sticky assignment "
                        "the client pins the variant that "
                        "`mlform.ml.experiments.assignment.assign(name, key, weights)` gives "
                        "with the `azureml-model-deployment` header (`mlform show` lists "
                        "the endpoint's `deployments`)", noop=True),
        )),
    "batch_job": TypeSupport(
        outputs=frozenset({"output_uri"}),
        unsupported=(Unsupported(("feature_view",), "score a dataset resource's `uri`"),
                     Unsupported(("schedule",), "run the batch job from a scheduler of "
                                                "your own; the azure provider runs it once"))),
    "monitor": TypeSupport(
        outputs=frozenset({"report", "evaluations"}),
        unsupported=(Unsupported(("batch_job",), "the azure provider monitors endpoints"),)),
    "retraining_policy": TypeSupport(outputs=frozenset({"last_action"})),
}
"""What Azure ML realises of each portable type: the outputs the handlers return, and the
fields it does not honour (see `mlform.engine.capabilities`)."""


class AzureProvider(DispatchingProvider):
    resource_types = frozenset(HANDLERS)
    capabilities = CAPABILITIES
    handlers = HANDLERS
    handler_package = __package__

    def __init__(self, ctx: ProviderContext):
        super().__init__(ctx)
        self._clients: Any = None
        self._clients_lock = threading.Lock()  # verbs on parallel threads share one set

    def validate_config(self) -> list[str | Problem]:
        return list(azure_config.problems(self.ctx.config))

    @property
    def clients(self) -> Any:
        with self._clients_lock:
            if self._clients is None:
                from .clients import Clients

                problems = self.validate_config()
                if problems:
                    raise AzureError(f"provider '{self.ctx.provider_name}' is misconfigured: "
                                     + "; ".join(map(str, problems)))
                self._clients = Clients(azure_config.load(self.ctx.config))
            return self._clients

    def make_handler(self, cls: type) -> Any:
        return cls(self.ctx, self.clients.cfg, self.clients)

    def failure(self, exc: Exception, req: Any) -> str | None:
        if isinstance(exc, AzureError | ValueError):
            return str(exc)
        if is_azure_error(exc):
            return explain(exc, "", req.resource.name)
        return None

    def usage(self, req: Any) -> Any:
        from .usage import usage

        return usage(self.ctx, req)

    def list_owned(self) -> list[tuple[str, str]]:
        from .ownership import list_owned

        return list_owned(self.ctx.stack, self.clients)

    def close(self) -> None:
        if self._clients is not None:
            self._clients.close()
