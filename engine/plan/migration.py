"""The plan's migration as one unit a reviewer reads, as plain data (`doc["migration"]`).

Computed from the plan's changes when it moves resources or a gateway's route changes
endpoint: what is copied (each move, from and to which provider, its files and size),
what is created, the parity condition and the cutover steps of each gateway whose
backend changes, what is destroyed and when, and whether `prevent_destroy` holds (a
plan that would destroy a protected resource is refused before it exists, so in a plan
it always holds, and the section says so). Nothing decides on it:
the views print it and the apply does what the changes say.
"""

from __future__ import annotations

from typing import Any

from .model import Action, Plan, ResourceChange


def section(plan: Plan) -> dict[str, Any] | None:
    """The migration section, or None when the plan migrates nothing."""
    moves = [c for c in plan.changes if c.action is Action.MOVE]
    cutovers = [cut for c in plan.changes if c.type == "gateway"
                and c.action in (Action.UPDATE, Action.DELETE_CREATE, Action.CREATE_DELETE)
                for cut in _cutovers(c)]
    if not moves and not cutovers:
        return None
    old_backends = {old: cut for cut in cutovers for old in cut["from"]}
    created = [{"resource": f"{c.type}.{c.name}", "provider": c.provider,
                "action": c.action.value}
               for c in plan.changes if c.action is Action.CREATE or c.action.is_replace]
    # A moved endpoint behind a gateway is a new endpoint on its target: it is created
    # there, and its old side goes only after the cutover onto it.
    named = {r["resource"] for r in created}
    created += [{"resource": cut["to"], "provider": cut["to_provider"], "action": "move"}
                for cut in cutovers if cut["to"] not in named]
    destroyed = [_destroyed(c, old_backends) for c in plan.changes
                 if c.action is Action.DELETE or c.action.is_replace]
    destroyed += [{"resource": f"{c.type}.{c.name}", "provider": c.moved_from,
                   "when": f"its old copy on '{c.moved_from}', "
                           + (_after_cutover(old_backends[f"{c.type}.{c.name}"])
                              if f"{c.type}.{c.name}" in old_backends else
                              f"once its successor on '{c.provider}' is copied, verified "
                              "and recorded")}
                  for c in moves]
    return {
        "copied": [{"resource": f"{c.type}.{c.name}", "from": c.moved_from, "to": c.provider,
                    "files": len(c.copies), "size": sum(n for _, n in c.copies)}
                   for c in moves],
        "created": created,
        "cutovers": cutovers,
        "destroyed": destroyed,
        # The planner refuses a plan that destroys a protected resource, so in a plan
        # that exists it holds; the reviewer is told so rather than left to wonder.
        "prevent_destroy": "holds",
    }


def _cutovers(change: ResourceChange) -> list[dict[str, Any]]:
    """Each route of a gateway change whose endpoint is new: the old endpoints it leaves,
    the parity condition, the new endpoint's rollout steps and rollback bounds, the soak."""
    before, after = change.before or {}, change.after or {}
    old = [_backend(r) for r in before.get("routes") or []]
    old_ids = {_identity(b) for b in old}
    new_ids = {_identity(_backend(r)) for r in after.get("routes") or []}
    leaving = [b for b in old if _identity(b) not in new_ids] or old
    out = []
    for route in after.get("routes") or []:
        new = _backend(route)
        if _identity(new) in old_ids:
            continue
        parity = dict(after.get("parity") or {})
        rollout = new.get("rollout") or {}
        out.append({
            "gateway": f"gateway.{change.name}",
            "from": [f"endpoint.{b.get('resource')}" for b in leaving if b.get("resource")],
            "from_providers": sorted({str(b.get("provider")) for b in leaving}),
            "to": f"endpoint.{new.get('resource')}",
            "to_provider": new.get("provider"),
            "parity": {
                "min_label_agreement": parity.get("min_label_agreement", 1.0),
                "max_score_difference": parity.get("max_score_difference"),
                "sample": parity.get("sample", 200),
                "holdout": parity.get("holdout"),
            },
            "steps": _steps(rollout),
            "wait": rollout.get("wait", "5s") if isinstance(rollout, dict) else None,
            "rollback": new.get("rollback") or {},
            "soak": after.get("soak", "0s"),
        })
    return out


def _destroyed(change: ResourceChange, old_backends: dict[str, dict[str, Any]]) -> dict[str, Any]:
    name = f"{change.type}.{change.name}"
    cut = old_backends.get(name)
    provider = change.provider
    if cut:
        when = _after_cutover(cut)
        # a replacement across providers: the old side is on the provider the cutover leaves
        provider = ", ".join(cut["from_providers"]) or provider
    elif change.action.is_replace:
        when = "once its replacement is created" if change.action is Action.CREATE_DELETE \
            else "before its replacement is created"
    else:
        when = "after the resources that use it have changed"
    return {"resource": name, "provider": provider, "when": when}


def _after_cutover(cut: dict[str, Any]) -> str:
    return (f"after {cut['gateway']}'s last cutover step and its soak ({cut['soak']}), "
            "once no traffic reaches it")


def _backend(route: Any) -> dict[str, Any]:
    backend = route.get("backend") if isinstance(route, dict) else None
    return backend if isinstance(backend, dict) else {}


def _identity(backend: dict[str, Any]) -> tuple:
    """A backend as the cutover tells it: its endpoint, provider and url (a url only the
    apply will know is new)."""
    url = (backend.get("outputs") or {}).get("url")
    return (backend.get("resource"), backend.get("provider"),
            url if isinstance(url, str) else "(new)")


def _steps(rollout: Any) -> list[int] | None:
    from mlform.engine.spec.models import Rollout
    from mlform.ml.serving.judging import traffic_steps

    try:
        return traffic_steps(Rollout.model_validate(rollout or {}))
    except (ValueError, TypeError):
        return None
