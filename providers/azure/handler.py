"""What every per-type handler shares: settings, clients, names, tags, blobs and code
folders."""

from __future__ import annotations

from typing import Any

from mlform.engine.dispatch import ResourceHandler
from mlform.engine.provider import CheckRequest, CheckResponse, ProviderContext

from . import packaging
from .blob import Blob
from .clients import Clients
from .config import AzureConfig
from .layout import Layout
from .naming import asset_name, tags


class Handler(ResourceHandler):
    """Base of the handlers; `rtype` names the resource type it realises."""

    def __init__(self, ctx: ProviderContext, cfg: AzureConfig, clients: Clients):
        super().__init__(ctx)
        self.cfg = cfg
        self.clients = clients
        self.layout = Layout(cfg.datastore, cfg.blob_url, cfg.container, cfg.prefix,
                             ctx.stack)

    @property
    def ml(self) -> Any:
        return self.clients.ml

    @staticmethod
    def options(spec: Any) -> dict[str, Any]:
        return dict(spec.provider_options.get("azure", {}))

    def blob(self, resource: str = "") -> Blob:
        return Blob(self.clients, resource)

    def tags(self, resource: str, spec: Any = None, **more: str) -> dict[str, str]:
        return tags(self.ctx.stack, resource, self.rtype,
                    getattr(spec, "tags", None) or {}, **more)

    def asset_name(self, resource: str) -> str:
        return asset_name(self.ctx.stack, resource)

    def arm_id(self, kind: str, name: str, version: str | None = None) -> str:
        """The workspace-scoped ARM id of an asset (`codes`, `models`, `data`, ...)."""
        found = f"{self.cfg.workspace_id}/{kind}/{name}"
        return f"{found}/versions/{version}" if version else found

    def upload_code(self, resource: str, kind: str, settings: dict[str, Any],
                    extra: dict[str, bytes] | None = None, spec: Any = None) -> str:
        """Upload a code folder (once per content) and register it as a code asset version;
        its ARM id, which jobs and deployments take."""
        from azure.ai.ml.entities._assets import Code

        files = packaging.folder(kind, settings, extra)
        digest = packaging.digest(files)
        prefix = self.layout.code_prefix(resource, digest)
        blob = self.blob(resource)
        marker = prefix + packaging.SETTINGS_FILE
        if not blob.exists(marker):  # the settings go last: their presence means complete
            for name, data in sorted(files.items()):
                if name != packaging.SETTINGS_FILE:
                    blob.put(prefix + name, data, self.tags(resource, spec))
            blob.put(marker, files[packaging.SETTINGS_FILE], self.tags(resource, spec))
        name = f"{self.asset_name(resource)}-{kind}"
        found = self.clients.get_or_none("code", lambda: self.ml._code.get(name, digest),
                                         resource)
        if found is None:
            code = Code(name=name, version=digest, path=self.layout.url(prefix),
                        tags=self.tags(resource, spec))
            self.clients.call("code", lambda: self.ml._code.create_or_update(code),
                              resource=resource)
        return self.arm_id("codes", name, digest)

    def check(self, req: CheckRequest) -> CheckResponse:
        """Problems shared by every type: tags become Azure tags, which anyone who may read
        the workspace reads. Handlers add their own."""
        from mlform.engine.input_checks import sensitive_problems

        found = req.inputs.get("tags")
        return CheckResponse(problems=sensitive_problems(
            {"tags": found} if isinstance(found, dict) else {}, self.rtype,
            "the tags of its Azure resources",
            help="tag with values that are not sensitive"))
