"""Incidents that end on their own: when what opened one recovers, or leaves the state.

What recovers which kind of incident, about which subject:

    a monitor's evaluation finds no drift     drift_breach of that monitor
    a monitor's performance check passes      performance_breach of that monitor
    an endpoint is applied (its rollout ran)  rollback of that endpoint
    a model is applied (its gates passed)     gate_failed of that model
    a training job is applied, apply all ok   job_failed of that training job
    a gateway is applied (its cutover ran)    rollback and parity_failed of that gateway
    a resource leaves the state (destroyed)   every kind about it

Each resolution is written to the incident (resolved by `mlform`, when, and why) and
appended to the audit log, so that nobody has to close what has already healed and
everybody can see what closed it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .incidents import KINDS, SYSTEM_ACTOR, Incident, IncidentStore

RECOVERED_BY_APPLY = {"endpoint": ("rollback",), "model": ("gate_failed",),
                      "training_job": ("job_failed",),
                      "gateway": ("rollback", "parity_failed")}
"""Resource type -> incident kinds that its successful apply ends."""

APPLIED_AS = {"endpoint": "rolled out", "model": "passed its gates and was registered",
              "training_job": "trained", "gateway": "cut over"}


def recoveries_from_apply(prior, result) -> list[tuple[str, tuple[str, ...], str]]:
    """(subject, kinds, reason) for what an apply recovered or removed.

    `prior` is the state the apply started from, `result` its ApplyResult. A training
    job counts only when the whole apply succeeded: a retrain fails as a whole when its
    model's gate or its rollout fails, even if the job itself trained."""
    found: list[tuple[str, tuple[str, ...], str]] = []
    after = result.state.resources
    for name, action in sorted(result.done.items()):
        res = after.get(name)
        if res is None or action == "delete":
            continue
        kinds = RECOVERED_BY_APPLY.get(res.type, ())
        if res.type == "training_job" and not result.ok:
            kinds = ()
        if kinds:
            found.append((name, kinds, f"{res.type} '{name}' {APPLIED_AS[res.type]} "
                                       f"({action})"))
    for name in sorted(set(prior.resources) - set(after)):
        found.append((name, KINDS, f"{prior.resources[name].type} '{name}' was destroyed"))
    return found


def recoveries_from_evaluation(monitor: str, evaluation: dict[str, Any] | None
                               ) -> list[tuple[str, tuple[str, ...], str]]:
    """(subject, kinds, reason) for what a monitor's new evaluation shows recovered.

    Only what was measured counts: an evaluation with too little traffic, or with no
    feedback to judge performance on, recovers nothing of what it could not see."""
    if not evaluation:
        return []
    breaches = set(evaluation.get("breaches") or [])
    at = evaluation.get("time", "")
    found: list[tuple[str, tuple[str, ...], str]] = []
    drift_measured = evaluation.get("verdict") in ("ok", "drift", "performance") \
        and evaluation.get("share", 0) is not None
    if drift_measured and "drift" not in breaches:
        share = evaluation.get("share")
        found.append((monitor, ("drift_breach",),
                      f"monitor '{monitor}' found no drift at {at}"
                      + (f" (drifted share {share:.2f})" if isinstance(share, float) else "")))
    performance = evaluation.get("performance") or {}
    if performance.get("passed") is True and "performance" not in breaches:
        value = performance.get("value")
        found.append((monitor, ("performance_breach",),
                      f"monitor '{monitor}' measured {performance.get('metric', 'performance')}"
                      + (f" {value:.4g}" if isinstance(value, int | float) else "")
                      + f" within bounds at {at}"))
    return found


def resolve(stack_dir: Path, recoveries: list[tuple[str, tuple[str, ...], str]],
            command: str, say: Callable[[str], None] | None = None) -> list[Incident]:
    """Resolve the unresolved incidents these recoveries end; audit and report each."""
    if not recoveries:
        return []
    resolved = IncidentStore(stack_dir).resolve_recovered(
        [(subject, kinds, f"{reason}, in '{command}'") for subject, kinds, reason in recoveries])
    if not resolved:
        return []
    from .audit import AuditLog

    audit = AuditLog(stack_dir)
    for incident in resolved:
        audit.append(command=f"{command}: resolve incident {incident.id}", result="ok",
                     plan_digest=None,
                     changes=[{"resource": r, "action": f"resolve incident {incident.id}"}
                              for r in incident.resources],
                     detail={"incident": incident.id, "kind": incident.kind,
                             "title": incident.title, "resolved_by": SYSTEM_ACTOR,
                             "automatic": True, "reason": incident.resolution})
        if say:
            say(f"incident {incident.id} resolved: {incident.resolution}")
    return resolved
