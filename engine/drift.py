"""Drift: where live infrastructure differs from the state, and the state from the spec.

Three questions, each answered by a finding of its own kind: was something
changed or deleted outside mlform (refresh against state), does the spec say
something not yet applied (plan against refreshed state), and does a provider
hold resources tagged for this stack that the state does not know (orphans).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .plan.model import Action, Plan
from .refresh import Finding


@dataclass
class DriftReport:
    stack: str
    checked_at: float
    resources: int
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return any(f.is_drift for f in self.findings)

    def to_json(self) -> dict:
        from .values import display

        return {
            "stack": self.stack,
            "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.checked_at)),
            "resources_checked": self.resources,
            "drifted": self.drifted,
            "findings": [{
                "resource": f.name, "type": f.type, "kind": f.kind, "detail": f.detail,
                "attributes": [{"path": a.path, "state": display(a.before),
                                "live": display(a.after)} for a in f.attributes],
            } for f in self.findings],
            "errors": self.errors,
        }


def spec_findings(plan: Plan, outside: set[str]) -> list[Finding]:
    """Changes the spec asks for that no apply has made yet."""
    from .plan.model import AttributeDiff

    out = []
    for c in plan.changes:
        if c.action is Action.NOOP or c.name in outside:
            continue
        detail = "; ".join(c.reasons)
        attrs = tuple(AttributeDiff(a.path, a.before, a.after) for a in c.attributes)
        kind = "spec_not_applied"
        if c.action is Action.DELETE:
            detail = "in state but no longer in the spec"
        out.append(Finding(c.name, c.type, kind, attrs, f"{c.action.value}: {detail}"))
    return out


def orphan_findings(providers, state, stack) -> tuple[list[Finding], list[str]]:
    known = {r.id for r in state.resources.values() if r.id}
    findings, errors = [], []
    for pname in stack.providers:
        try:
            owned = providers.get(pname).list_owned()
        except Exception as exc:  # listing is best effort; the rest of the report stands
            errors.append(f"provider {pname}: cannot list owned resources: {exc}")
            continue
        for rtype, rid in owned:
            if rid not in known:
                findings.append(Finding(rid, rtype, "orphan",
                                        detail=f"belongs to stack '{stack.name}' in provider "
                                               f"'{pname}' but is not in the state"))
    return findings, errors
