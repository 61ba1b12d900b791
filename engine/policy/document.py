"""The plan as one plain-data document for policy rules: every resource as it will be
(or, for a delete, as it was) and every change. Its shape is in docs/policies.md.

Each resource is its spec with defaults filled in, then the plan's evaluated inputs
laid over it: every field of its type is there, so a rule reads
`resource.rollback.max_error_rate` whether or not the spec wrote it. A value known only
after apply, like a field that is not set, is absent (test it with CEL's `has()`:
cel-python compares nothing with null); a sensitive one is the string `(sensitive)`.
"""

from __future__ import annotations

from typing import Any

from ..plan.model import Action, Plan, ResourceChange
from ..values import Secret, StoredSecret, Unknown


def build(plan: Plan, stack, provider_types: dict[str, str],
          labels: tuple[str, ...]) -> dict[str, Any]:
    resources, changes = {}, []
    for change in plan.changes:
        resources[change.name] = _resource(change, stack, provider_types)
        changes.append({
            "name": change.name, "type": change.type, "action": change.action.value,
            "before": _plain(change.before), "after": _plain(change.after),
            "attributes": [{"path": a.path, "before": _plain(a.before),
                            "after": _plain(a.after),
                            "forces_replacement": a.forces_replacement}
                           for a in change.attributes],
            "replace_paths": list(change.replace_paths), "reasons": list(change.reasons)})
    return {"stack": plan.stack, "destroy": plan.destroy, "targets": list(plan.targets),
            "labels": list(labels), "summary": plan.counts(), "resources": resources,
            "changes": changes}


def _resource(change: ResourceChange, stack, provider_types: dict[str, str]) -> dict:
    spec = stack.resources.get(change.name)
    inputs = change.before if change.action is Action.DELETE else change.after
    if spec is not None and change.action is not Action.DELETE:
        base = spec.model.model_dump(mode="json")
    else:
        base = _defaults(change.type, inputs)
    doc = _plain(_overlay(base, inputs or {}))
    loc = stack.location(("resources", change.name), key=True) if spec is not None else None
    doc.update({"name": change.name, "type": change.type, "provider": change.provider,
                "provider_type": provider_types.get(change.provider, change.provider),
                "action": change.action.value, "location": str(loc) if loc else "",
                "dependencies": list(change.dependencies)})
    return doc


def _defaults(rtype: str, inputs: dict | None) -> dict:
    """A resource that is no longer in the spec, from its recorded inputs, with the
    defaults of its type for what they do not hold."""
    from ..spec.models import RESOURCE_TYPES

    model = RESOURCE_TYPES.get(rtype)
    if model is None:
        return {}
    try:
        return model.model_validate({**_placeholders(inputs or {}), "type": rtype}
                                    ).model_dump(mode="json")
    except Exception:  # recorded by another version: what was recorded is what there is
        return {}


def _placeholders(value: Any) -> Any:
    if isinstance(value, Unknown | Secret | StoredSecret):
        return "${unknown}"
    if isinstance(value, dict):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_placeholders(v) for v in value]
    return value


def _overlay(base: Any, top: Any) -> Any:
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for k, v in top.items():
            out[k] = _overlay(base.get(k), v)
        return out
    return top


def _plain(value: Any) -> Any:
    """JSON data: unset and unknown fields left out, secrets `(sensitive)`."""
    if isinstance(value, Unknown):
        return None
    if isinstance(value, Secret | StoredSecret):
        return "(sensitive)"
    if isinstance(value, dict):  # an unset field is absent: CEL's has() tells
        return {str(k): _plain(v) for k, v in value.items()
                if v is not None and not isinstance(v, Unknown)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
