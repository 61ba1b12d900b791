"""The ray provider: each verb goes to the handler of the resource's type.

Handlers are imported on first use; ray is imported when the first job client is made.
Every Ray failure becomes a response error in words (see errors.py), never a raise.
"""

from __future__ import annotations

import threading
from typing import Any

from mlform.engine.capabilities import TypeSupport, Unsupported
from mlform.engine.dispatch import DispatchingProvider
from mlform.engine.provider import Problem, ProviderContext

from . import config as ray_config
from .errors import RayError

HANDLERS = {
    "dataset": "dataset:DatasetHandler",
    "training_job": "training:TrainingJobHandler",
    "model": "model:ModelHandler",
    "batch_job": "batch:BatchJobHandler",
    "endpoint": "endpoint:EndpointHandler",
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
        unsupported=tuple(Unsupported((f,), "the ray provider trains on a dataset: set "
                                            "'dataset: ${<dataset>.uri}'")
                          for f in ("feature_view", "labels"))),
    "model": TypeSupport(
        outputs=frozenset({"uri", "name", "version", "gates"}),
        unsupported=(Unsupported(("retirement",), "the ray registry keeps every version's "
                                                  "artifact", noop=True),
                     Unsupported(("source",), BYOM_HELP))),
    "batch_job": TypeSupport(
        outputs=frozenset({"output_uri"}),
        unsupported=(Unsupported(("feature_view",), "the ray provider scores a dataset: set "
                                                    "'dataset: ${<dataset>.uri}'"),
                     Unsupported(("schedule",), "a ray batch job scores when an apply "
                                                "changes its model or data; run 'mlform "
                                                "apply' on your schedule"))),
    "endpoint": TypeSupport(outputs=frozenset({"url", "name", "traffic"}), unsupported=(
        Unsupported(("feature_view",), "feature_view lookups are served by the local "
                    "provider only: send full feature rows to a Ray Serve endpoint"),
        *(Unsupported(("limits", bound), "Ray Serve's HTTP proxy reads requests: its "
                      "request_timeout_s (Serve's http_options) bounds them", noop=True)
          for bound in ("max_header_bytes", "header_timeout", "body_timeout",
                        "idle_timeout")))),
    "monitor": TypeSupport(outputs=frozenset({"report", "evaluations", "last_evaluation"}),
                           unsupported=(Unsupported(("batch_job",), "on ray a monitor "
                                        "watches an endpoint's logged requests: set "
                                        "'endpoint' to an endpoint's id"),)),
    "retraining_policy": TypeSupport(outputs=frozenset({"last_action"})),
}
"""What a Ray cluster realises of each portable type: the outputs the handlers return,
and the fields it does not honour (see `mlform.engine.capabilities`)."""


class RayProvider(DispatchingProvider):
    resource_types = frozenset(HANDLERS)
    capabilities = CAPABILITIES
    handlers = HANDLERS
    handler_package = __package__

    def __init__(self, ctx: ProviderContext):
        super().__init__(ctx)
        self._cluster: Any = None
        self._cluster_lock = threading.Lock()  # verbs on parallel threads share one

    def validate_config(self) -> list[str | Problem]:
        return list(ray_config.problems(self.ctx.config))

    @property
    def cluster(self) -> Any:
        """The cluster connection (`cluster.Cluster`), made on first use."""
        with self._cluster_lock:
            if self._cluster is None:
                from .cluster import Cluster

                problems = self.validate_config()
                if problems:
                    raise RayError(f"provider '{self.ctx.provider_name}' is misconfigured: "
                                   + "; ".join(map(str, problems)))
                self._cluster = Cluster(ray_config.load(self.ctx.config), self.ctx.stack_dir)
            return self._cluster

    def make_handler(self, cls: type) -> Any:
        return cls(self.ctx, self.cluster)

    def failure(self, exc: Exception, req: Any) -> str | None:
        if isinstance(exc, RayError | ValueError):
            return str(exc)
        if isinstance(exc, ImportError) and "ray" in str(exc):
            return f"the ray provider cannot load: {exc}: pip install 'mlform[ray]'"
        if type(exc).__module__.startswith("ray"):
            return f"Ray refused: {str(exc).strip()[:500]}"
        if isinstance(exc, OSError) and type(exc).__module__.startswith(("requests", "urllib3")):
            return (f"lost the connection to the Ray cluster at {self.cluster.cfg.address} "
                    f"({exc}); an apply run again adopts what was started")
        return None

    def list_owned(self) -> list[tuple[str, str]]:
        from .ownership import list_owned
        from .serving.serve_api import owned_applications

        return list_owned(self.ctx.stack, self.cluster) + owned_applications(
            self.ctx.stack, self.cluster.cfg)
