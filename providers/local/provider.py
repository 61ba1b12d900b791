"""The local provider's verbs, dispatched to the handler of each resource type.

Handlers are imported lazily so that planning a stack does not import torch.
"""

from __future__ import annotations

from mlform.engine.capabilities import TypeSupport
from mlform.engine.dispatch import DispatchingProvider
from mlform.engine.spec.outputs import OUTPUT_MODELS

HANDLERS = {
    "dataset": "dataset:DatasetHandler",
    "feature_view": "feature_view:FeatureViewHandler",
    "training_job": "training.handler:TrainingJobHandler",
    "model": "registry.handler:ModelHandler",
    "endpoint": "serving.handler:EndpointHandler",
    "batch_job": "batch:BatchJobHandler",
    "monitor": "monitoring.handler:MonitorHandler",
    "retraining_policy": "retraining:RetrainingPolicyHandler",
    "gateway": "gateway.handler:GatewayHandler",
}


class LocalProvider(DispatchingProvider):
    resource_types = frozenset(HANDLERS)
    # Every output of every type, and every field: the portable models were drawn from it.
    capabilities = {rtype: TypeSupport(outputs=frozenset(OUTPUT_MODELS[rtype].model_fields))
                    for rtype in HANDLERS}
    handlers = HANDLERS
    handler_package = __package__

    def list_owned(self) -> list[tuple[str, str]]:
        """The endpoint servers and gateway proxies running for this stack. Everything
        else the provider makes is files under its data directory, which no process
        keeps alive."""
        return [*self.handler("endpoint").running_servers(),
                *self.handler("gateway").running_proxies()]
