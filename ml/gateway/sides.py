"""The two sides of a cutover as callables: an endpoint's predictions through its
provider's `invoke`, for the parity check and for probes, whatever provider the
gateway itself runs on (the engine gave the gateway each endpoint's provider type and
non-secret configuration)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlform.engine.provider import InvokeRequest, ResourceRef


def asker(backend: dict[str, Any], stack: str, stack_dir: Path,
          timeout: float = 30.0) -> Callable[[list[Any]], list[Any]]:
    """`ask(rows) -> predictions` for the endpoint `backend` describes; raises with the
    endpoint's own error when it does not answer."""
    from mlform.engine.registry import make_provider

    provider = make_provider(backend["provider_type"], backend["provider"],
                             backend["config"], stack, Path(stack_dir))
    outputs = backend.get("outputs") or {}

    def ask(rows: list[Any]) -> list[Any]:
        resp = provider.invoke(InvokeRequest(
            ResourceRef(backend["resource"], "endpoint", outputs.get("id")), outputs, rows,
            timeout=timeout))
        if resp.error:
            raise RuntimeError(resp.error)
        return resp.predictions
    return ask
