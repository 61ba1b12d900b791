"""What every per-type handler shares: settings, clients, ids, labels and GCS."""

from __future__ import annotations

from typing import Any

from mlform.engine.dispatch import ResourceHandler
from mlform.engine.provider import CheckRequest, CheckResponse, ProviderContext

from .clients import Clients
from .config import GcpConfig
from .gcs import Gcs
from .layout import Layout
from .naming import labels, vertex_id


class Handler(ResourceHandler):
    """Base of the handlers; `rtype` names the resource type it realises."""

    def __init__(self, ctx: ProviderContext, cfg: GcpConfig, clients: Clients):
        super().__init__(ctx)
        self.cfg = cfg
        self.clients = clients
        self.layout = Layout(cfg.bucket, cfg.prefix, ctx.stack)

    @staticmethod
    def options(spec: Any) -> dict[str, Any]:
        return dict(spec.provider_options.get("gcp", {}))

    def gcs(self, resource: str = "") -> Gcs:
        return Gcs(self.clients, resource)

    def vertex_id(self, resource: str, *more: str) -> str:
        return vertex_id(self.ctx.stack, resource, *more)

    def labels(self, resource: str, spec: Any = None, **more: str) -> dict[str, str]:
        return labels(self.ctx.stack, resource, self.rtype,
                      getattr(spec, "tags", None) or {}, **more)

    def name(self, kind: str, vertex: str) -> str:
        """The full resource name of `vertex` id in the provider's location."""
        return f"{self.cfg.parent}/{kind}/{vertex}"

    def check(self, req: CheckRequest) -> CheckResponse:
        """Problems shared by every type: tags become labels on Google Cloud resources,
        where anyone who may list them reads them. Handlers add their own."""
        from mlform.engine.input_checks import sensitive_problems

        tags = req.inputs.get("tags")
        return CheckResponse(problems=sensitive_problems(
            {"tags": tags} if isinstance(tags, dict) else {}, self.rtype,
            "the labels of its Google Cloud resources",
            help="tag with values that are not sensitive"))
