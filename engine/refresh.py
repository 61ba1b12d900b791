"""Reading live state through providers, and what it reveals: drift and adoptions.

Nothing here writes state; `refresh` returns the refreshed state and findings,
and the caller decides whether to keep them (`mlform refresh` does; `plan` does not).
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from .diagnostics import MlformError
from .plan.diffing import diff_values
from .plan.model import AttributeDiff
from .provider import ObserveRequest, ObserveResponse
from .providerset import ProviderSet, ref
from .state.model import ResourceState, State
from .values import Secret, StoredSecret, from_storable


@dataclass(frozen=True)
class Finding:
    """One difference between what mlform recorded, what is live, and what is written."""

    name: str
    type: str
    kind: str
    """changed_outside | deleted_outside | unhealthy | spec_not_applied | orphan | adopted"""
    attributes: tuple[AttributeDiff, ...] = ()
    detail: str = ""

    @property
    def is_drift(self) -> bool:
        return self.kind != "adopted"


KIND_TEXT = {
    "changed_outside": "changed outside mlform",
    "deleted_outside": "deleted outside mlform",
    "unhealthy": "unhealthy",
    "spec_not_applied": "spec changed but not applied",
    "orphan": "not managed by this stack (orphan)",
    "adopted": "adopted after an interrupted apply",
}


@dataclass
class RefreshResult:
    state: State
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def refresh(state: State, providers: ProviderSet, parallelism: int = 10,
            names: set[str] | None = None, hooks=None) -> RefreshResult:
    from .capabilities import portable  # lazily, as in _bad_outputs

    todo = [r for r in state.resources.values() if names is None or r.name in names]
    result = RefreshResult(state=state)
    if not todo:
        return result

    def observe(res: ResourceState) -> tuple[ResourceState, ObserveResponse | Exception]:
        try:
            provider = providers.get(res.provider)
            # the old object of a replacement or move (`name~deposed`) is the provider's
            # object of `name`: asked for by that name, as its delete is
            req = ObserveRequest(resource=ref(res.name.split("~", 1)[0], res.type, res.id),
                                 inputs=res.inputs,
                                 outputs=res.provider_outputs,
                                 idempotency_key=res.idempotency_key
                                 if res.status == "pending" else None)
            return res, provider.observe(req)
        except MlformError:
            raise
        except Exception as exc:  # a provider bug must not lose the others' results
            return res, exc

    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(todo)))) as pool:
        observed = list(pool.map(observe, todo))

    resources = dict(state.resources)
    for res, got in observed:
        if hooks:
            hooks.refreshed(res.name)
        if isinstance(got, Exception) or got.error:
            msg = str(got) if isinstance(got, Exception) else got.error
            result.errors.append(f"{res.name}: cannot read live state: {msg}")
            continue
        bad = _bad_outputs(providers, res, got)
        if bad:  # the record stands; what the provider read back cannot be trusted
            result.errors.append(f"{res.name}: {bad}")
            continue
        merged, finding = _merge(res, got, portable(providers.get(res.provider), res.type))
        if merged is None:
            resources.pop(res.name, None)
        else:
            resources[res.name] = merged
        if finding:
            result.findings.append(finding)
    result.state = replace(state, resources=resources)
    return result


def _bad_outputs(providers: ProviderSet, res: ResourceState, got: ObserveResponse) -> str | None:
    """Outputs read back that do not fit the type's model. Not `require`d: a record of
    an older version may lack an output that a newer provider returns on its next apply."""
    from .capabilities import output_error

    if not got.exists or got.outputs is None:
        return None
    return output_error(providers.get(res.provider), res.provider, res.type, res.name,
                        got.outputs, require=False)


def _merge(res: ResourceState, got: ObserveResponse,
           kept: Collection[str] | None) -> tuple[ResourceState | None, Finding | None]:
    """The resource as refreshed (None: it is gone), and what that reveals. Outputs read
    back are recorded apart from the provider's private data, `kept` being the portable ones."""
    if res.status == "pending":
        if got.exists:
            adopted = (res.with_provider_outputs(got.outputs, kept) if got.outputs
                       else res).with_(id=got.id or res.id, status="ready")
            return adopted, Finding(res.name, res.type, "adopted",
                                    detail=f"found {got.id} created by an interrupted apply")
        return (None if res.id is None else res), None
    if not got.exists:
        return None, Finding(res.name, res.type, "deleted_outside", detail=got.detail)
    live_inputs = _overlay(res.inputs, got.inputs) if got.inputs is not None else res.inputs
    attrs = tuple(AttributeDiff(p, b, a) for p, b, a in diff_values(res.inputs, live_inputs))
    refreshed = (res.with_provider_outputs(got.outputs, kept) if got.outputs is not None
                 else res).with_(inputs=live_inputs, id=got.id or res.id)
    if not got.healthy:
        return refreshed.with_(status="tainted"), Finding(res.name, res.type, "unhealthy",
                                                          detail=got.detail)
    if attrs:
        return refreshed, Finding(res.name, res.type, "changed_outside", attrs, got.detail)
    return refreshed, None


def _overlay(recorded: Any, live: Any) -> Any:
    """Live values over recorded ones, for the attributes the provider could read back.

    A sensitive value cannot be read back in plain text, so the recorded one stands.
    """
    live = from_storable(live) if isinstance(live, dict) else live
    if isinstance(live, StoredSecret | Secret):
        return recorded
    if isinstance(recorded, dict) and isinstance(live, dict):
        out = dict(recorded)
        for k, v in live.items():
            out[k] = _overlay(recorded.get(k), v) if k in recorded else v
        return out
    return live
