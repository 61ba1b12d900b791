"""What a gateway's provider needs to know about each endpoint it fronts.

A route is written as a reference to an endpoint's url (`${fraud_endpoint.url}`);
the engine adds, beside the evaluated url, the endpoint it names: its resource name,
its provider (name, type and configuration, so that the gateway can build that
provider and call its `invoke`), its outputs and its `rollout`/`rollback` settings
(by which traffic moves onto it). Because these are part of the gateway's inputs, an
endpoint that moves to another provider or gets another url is a change of the
gateway that the plan shows.

A gateway process keeps the backend's provider configuration on disk and in its
command's environment, so a configuration holding a sensitive value is refused.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .diagnostics import Diagnostic, MlformError
from .spec.refs import walk_refs

if TYPE_CHECKING:
    from .evaluate import Evaluator

SECRET_KEY = re.compile(r"secret|password|passwd|token|credential|api_?key|access_?key",
                        re.IGNORECASE)
BACKEND_OUTPUTS = ("url", "name", "id")
"""The endpoint's attributes a backend's provider needs to call it."""


def with_backends(evaluator: Evaluator, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The gateway's evaluated `inputs` with a `backend` beside each route's endpoint."""
    stack = evaluator.stack
    raw_routes = stack.resources[name].inputs.get("routes") or []
    routes = []
    for i, (raw, route) in enumerate(zip(raw_routes, inputs.get("routes") or [], strict=False)):
        where = ("resources", name, "routes", i, "endpoint")
        target = _endpoint_named(stack, raw.get("endpoint"), where)
        routes.append({**route, "backend": backend(evaluator, target, where)})
    return {**inputs, "routes": routes}


def backend(evaluator: Evaluator, target: str, where: tuple) -> dict[str, Any]:
    stack = evaluator.stack
    spec = stack.resources[target]
    provider = stack.providers.get(spec.provider)
    config = dict(provider.config) if provider else {}
    _refuse_secrets(evaluator, spec.provider, config, where)
    from .spec.models import Rollback, Rollout

    endpoint_inputs = evaluator.inputs(target)
    attrs = evaluator.attributes(target) or {}
    return {
        "resource": target,
        "provider": spec.provider,
        "provider_type": provider.type if provider else spec.provider,
        "config": config,
        "outputs": {k: attrs[k] for k in BACKEND_OUTPUTS if k in attrs},
        "rollout": _settings(Rollout, endpoint_inputs.get("rollout")),
        "rollback": _settings(Rollback, endpoint_inputs.get("rollback")),
    }


def _settings(model: Any, given: Any) -> Any:
    """The endpoint's rollout or rollback block with defaults filled in (as written when
    it cannot be read yet: a value only an apply will tell)."""
    try:
        return model.model_validate(given or {}).model_dump(mode="json")
    except ValueError:
        return given


def _endpoint_named(stack, raw: Any, where: tuple) -> str:
    refs = []
    if isinstance(raw, str):
        refs = [r for _, r in walk_refs(raw) if not r.is_var]
    target = refs[0].root if len(refs) == 1 else None
    if target is None or target not in stack.resources \
            or stack.resources[target].type != "endpoint":
        raise MlformError(Diagnostic(
            "a gateway route must name an endpoint by a reference to its url",
            location=stack.location(where),
            help='write endpoint: "${fraud_endpoint.url}"'))
    return target


def _refuse_secrets(evaluator: Evaluator, provider: str, config: dict[str, Any],
                    where: tuple) -> None:
    for key, value in _leaves(config):
        sensitive = bool(SECRET_KEY.search(key))
        if isinstance(value, str) and not sensitive:
            for _, ref in walk_refs(value):
                var = evaluator.stack.variables.get(ref.path[0]) if ref.is_var else None
                sensitive = sensitive or bool(var is not None and var.sensitive)
        if sensitive:
            raise MlformError(Diagnostic(
                f"the gateway would hold provider '{provider}''s sensitive setting '{key}'",
                location=evaluator.stack.location(where),
                detail="a gateway calls its endpoints through their provider, whose "
                       "configuration it keeps in its own process and files",
                help=f"give provider '{provider}' its credentials from the environment or "
                     "its SDK's own configuration instead of the stack"))


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), value)]
