"""What every per-type handler shares: settings, clients, names, tags and waiting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlform.engine.dispatch import ResourceHandler
from mlform.engine.provider import (
    CheckRequest,
    CheckResponse,
    DiffRequest,
    DiffResponse,
    Progress,
    ProviderContext,
    default_diff,
)

from .clients import Clients
from .config import AwsConfig
from .errors import is_not_found
from .layout import Layout
from .naming import sagemaker_name, tags
from .waiting import wait_until


class Handler(ResourceHandler):
    """Base of the handlers; `rtype` names the resource type it realises."""

    def __init__(self, ctx: ProviderContext, cfg: AwsConfig, clients: Clients):
        super().__init__(ctx)
        self.cfg = cfg
        self.clients = clients
        self.layout = Layout(cfg.bucket, cfg.prefix, ctx.stack)

    @staticmethod
    def options(spec: Any) -> dict[str, Any]:
        return dict(spec.provider_options.get("aws", {}))

    def name(self, resource: str, *more: str) -> str:
        return sagemaker_name(self.ctx.stack, resource, *more)

    def tags(self, resource: str, spec: Any) -> list[dict[str, str]]:
        return tags(self.ctx.stack, resource, self.rtype, spec.tags)

    def check(self, req: CheckRequest) -> CheckResponse:
        """Problems shared by every type: tags are revealed onto AWS resources, where
        anyone who may list them reads them. Handlers add their own."""
        from mlform.engine.input_checks import sensitive_problems

        tags = req.inputs.get("tags")
        return CheckResponse(problems=sensitive_problems(
            {"tags": tags} if isinstance(tags, dict) else {}, self.rtype,
            "the tags of its AWS resources", help="tag with values that are not sensitive"))

    def diff(self, req: DiffRequest) -> DiffResponse:
        return default_diff(req)

    def wait(self, describe: Callable[[], dict[str, Any]], status_key: str,
             settled: set[str], what: str, progress: Progress) -> dict[str, Any]:
        return wait_until(describe, status_key, frozenset(settled), what=what,
                          timeout=self.cfg.timeout(self.rtype),
                          interval=self.cfg.poll_interval, progress=progress,
                          resource_type=self.rtype)


def describe_or_none(call: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any] | None:
    """The description, or None when the thing does not exist."""
    try:
        return call(**kwargs)
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise
