"""What opens an incident, and with which kind, title and subject:

    a provider's apply failure typed `gate_failed`    gate_failed about that model
    a provider's apply failure typed `rolled_back`    rollback about that endpoint
    a provider's apply failure typed `parity_failed`  parity_failed about that gateway
    a provider's apply failure typed `failed_back`    rollback about that gateway
    a monitor's breach                                drift_breach or performance_breach
    a retrain by a policy that stopped                job_failed about the training job

Apply failures are matched by their typed kind (`ApplyResponse.failure`), never by
the words of the error. `incident_recovery` says what ends each of them.
"""

from __future__ import annotations

from typing import Any

from .incidents import Incident, IncidentStore
from .provider import Failure

FAILURE_INCIDENTS = {
    Failure.GATE_FAILED: ("gate_failed", "model {name}: a gate failed; version not registered"),
    Failure.ROLLED_BACK: ("rollback", "endpoint {name} rolled back"),
    Failure.PARITY_FAILED: ("parity_failed",
                            "gateway {name}: parity failed; no traffic moved"),
    Failure.FAILED_BACK: ("rollback", "gateway {name} failed back to the old endpoint"),
}
"""Typed apply failure -> (incident kind, title)."""


def open_for_apply(store: IncidentStore, plan, result) -> list[Incident]:
    """An incident for each resource of `result` whose failure is of a kind someone
    should look at (a failed gate, a rolled-back rollout)."""
    opened = []
    for name, failure in sorted(result.failures.items()):
        if failure not in FAILURE_INCIDENTS or name not in result.failed:
            continue
        kind, title = FAILURE_INCIDENTS[failure]
        change = plan.change_for(name)
        dependencies = list(change.dependencies) if change else []
        opened.append(store.open(kind, title.format(name=name), [name, *dependencies],
                                 measured={}, detail=result.failed[name], subject=name))
    return opened


def open_breach_incident(store: IncidentStore, stack, name: str,
                         breach: dict[str, Any]) -> Incident:
    """An incident for a monitor's breach, naming the monitor and what it watches."""
    kinds = breach.get("breaches") or [breach.get("kind", "drift")]
    kind = "performance_breach" if "performance" in kinds else "drift_breach"
    spec = stack.resources.get(name)
    watched = [d for d in (spec.dependencies if spec else [])
               if d in stack.resources and stack.resources[d].type in ("endpoint", "batch_job")]
    return store.open(kind, f"{name}: {', '.join(kinds)} breach", [name, *watched],
                      measured=breach.get("values") or {},
                      detail=f"thresholds {breach.get('thresholds')}", subject=name)


def open_retrain_incident(store: IncidentStore, policy: str, job: str,
                          outcome: str) -> Incident:
    """An incident for a retrain that `policy` asked for and that stopped."""
    return store.open("job_failed", f"retrain of {job} by {policy} failed", [policy, job],
                      measured={}, detail=outcome, subject=job)
