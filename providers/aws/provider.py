"""The aws provider: each verb goes to the handler of the resource's type.

Handlers are imported on first use; boto3 is imported when the first client is made.
Every AWS failure becomes a response error in words (see errors.py), never a raise.
"""

from __future__ import annotations

import threading
from typing import Any

from mlform.engine.capabilities import TypeSupport, Unsupported
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
    "gateway": "gateway:GatewayHandler",
}


CAPABILITIES = {
    "dataset": TypeSupport(outputs=frozenset({"uri", "version", "path", "rows", "columns"})),
    "training_job": TypeSupport(outputs=frozenset({
        "artifact", "run_id", "metrics", "device", "device_note", "code_digest"})),
    "model": TypeSupport(
        outputs=frozenset({"uri", "name", "version", "gates"}),
        unsupported=(Unsupported(("retirement",), "the SageMaker model registry keeps every "
                                                  "version; retire them there", noop=True),)),
    "endpoint": TypeSupport(
        outputs=frozenset({"url", "name", "traffic"}),
        unsupported=(
            Unsupported(("feature_view",), "send full feature rows to SageMaker, or serve "
                                           "this endpoint with the local provider"),
            # a gateway's cutover onto the endpoint judges its steps by these three
            # (mlform.ml.gateway.cutover): ignored by SageMaker, not by mlform
            *(Unsupported(("rollback", f), "SageMaker's own rollout ignores it, judging "
                                           "each step by its CloudWatch alarms "
                                           "(max_error_rate, max_p99_latency_ms) alone; a "
                                           "gateway's cutover onto this endpoint does judge "
                                           "its steps by it", noop=True)
              for f in ("min_requests", "evidence_timeout", "on_inconclusive")),
            Unsupported(("rollback", "on_health_check_failure"), "SageMaker judges each "
                        "rollout step by its CloudWatch alarms (max_error_rate, "
                        "max_p99_latency_ms) alone", noop=True),
            *(Unsupported(("logging", f), "SageMaker data capture sizes its own files",
                          noop=True) for f in ("max_rows", "max_bytes")),
            Unsupported(("limits",), "SageMaker sets its own request limits", noop=True),
            Unsupported(("experiment", "key"), "SageMaker assigns each request to a variant "
                        "at random by weight, whatever its body holds (a valid experiment, "
                        "not a sticky one): a client that wants the same variant for the same "
                        "key pins it with InvokeEndpoint's TargetVariant, computed by "
                        "mlform.ml.experiments.assignment.assign", noop=True),
        )),
    "batch_job": TypeSupport(outputs=frozenset({"output_uri"})),
    # last_evaluation arrives with `mlform watch`, after the apply that references resolve in
    "monitor": TypeSupport(outputs=frozenset({"report", "evaluations"})),
    "retraining_policy": TypeSupport(outputs=frozenset({"last_action"})),
    "gateway": TypeSupport(outputs=frozenset({"url", "weights"})),
}
"""What SageMaker realises of each portable type: the outputs the handlers return, and
the fields it does not honour (see `mlform.engine.capabilities`)."""


class AwsProvider(DispatchingProvider):
    resource_types = frozenset(HANDLERS)
    capabilities = CAPABILITIES
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

    def pulumi_resources(self, entries: list[Any]) -> Any:
        """This provider's entries in state as pulumi-aws declarations (`mlform export
        pulumi`); see pulumi.py."""
        from .pulumi import export

        return export(self, entries)

    def usage(self, req: Any) -> Any:
        from .usage import usage

        return usage(self.ctx, req)

    def list_owned(self) -> list[tuple[str, str]]:
        from .ownership import list_owned

        return list_owned(self.ctx.stack, self.clients)

    def close(self) -> None:
        if self._clients is not None:
            self._clients.close()
