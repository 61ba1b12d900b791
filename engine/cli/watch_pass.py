"""One pass of `mlform watch`: tick the controllers, record what they measured, open and
resolve incidents, and run the retrains that policies ask for.

The state lock is taken only for the moments that need a consistent state: reading
it before the ticks, writing what they measured after them, and each retrain (an
apply, which holds the lock while it changes state). Monitors evaluate and policies
decide with the lock free, so that `plan` and `apply` run meanwhile. A result is
recorded only if its resource is still the one that was ticked (same id and
inputs): what another command changed in between is never overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

CONTROLLER_TYPES = ("monitor", "batch_job", "feature_view")
POLICY_TYPES = ("retraining_policy",)

Say = Callable[[str], None]
Lock = Callable[[], AbstractContextManager]
"""A function giving a context that holds the state lock for one short step."""


@dataclass
class Tick:
    name: str
    response: object  # TickResponse
    spec: object | None
    recorded: bool
    """Its new outputs are in state (or it had none to record)."""


@dataclass
class PassResult:
    breached: list[str] = field(default_factory=list)
    """Monitors whose latest evaluation is a breach (new in this pass or standing)."""
    errors: list[str] = field(default_factory=list)
    """Controllers that could not run, and retrains that stopped."""
    retrains: int = 0


def tick_all(session, types: tuple[str, ...], say: Say, lock: Lock,
             outcome: PassResult) -> list[Tick]:
    """Tick every ready resource of `types` in state, with the lock free while they run;
    then record their new outputs under the lock."""
    from ..provider import TickRequest
    from ..providerset import ref

    with lock():
        state = session.read_state()
    stack_outputs = {n: {**r.outputs, "id": r.id} for n, r in state.resources.items()}
    stack_inputs = {n: r.inputs for n, r in state.resources.items()}
    ticks: list[tuple[str, object, object]] = []
    for name, res in sorted(state.resources.items()):
        if res.type not in types or res.status != "ready":
            continue
        req = TickRequest(resource=ref(name, res.type, res.id), inputs=res.inputs,
                          outputs=res.outputs, stack_outputs=stack_outputs,
                          stack_inputs=stack_inputs, now=time.time())
        try:
            resp = session.providers.get(res.provider).tick(req)
        except Exception as exc:  # one broken controller must not stop the others
            say(f"{name}: error: {exc}")
            outcome.errors.append(f"{name}: {exc}")
            continue
        if res.type == "monitor" and _breached(res, resp):
            outcome.breached.append(name)
        if resp is None:
            continue
        for line in resp.events:
            say(f"{name}: {line}")
        if resp.error:
            say(f"{name}: error: {resp.error}")
            outcome.errors.append(f"{name}: {resp.error}")
        if resp.outputs is not None:
            stack_outputs[name] = {**stack_outputs[name], **resp.outputs}
        ticks.append((name, res, resp))
    recorded = _record(session, [(n, r, t.outputs) for n, r, t in ticks
                                 if t.outputs is not None], say, lock)
    return [Tick(name, resp, session.stack.resources.get(name),
                 resp.outputs is None or name in recorded) for name, _, resp in ticks]


def _breached(res, resp) -> bool:
    """The monitor's latest evaluation is a breach: this tick's, or the standing one."""
    if resp is not None and resp.outputs is not None:
        return resp.breach is not None
    last = (res.outputs or {}).get("last_evaluation") or {}
    return bool(last.get("breaches"))


def _record(session, results: list[tuple[str, object, dict]], say: Say, lock: Lock) -> set[str]:
    """Write each result onto the state as it is now; returns the names recorded."""
    if not results:
        return set()
    recorded = set()
    with lock():
        current = session.read_state()
        changed = current
        for name, seen, outputs in results:
            now = current.resources.get(name)
            if now is None or now.id != seen.id or now.inputs != seen.inputs:
                say(f"{name}: changed by another command while it ran; its result is not "
                    "recorded")
                continue
            changed = changed.with_resource(now.with_(outputs={**now.outputs, **outputs}))
            recorded.add(name)
        if changed is not current:
            session.backend.write(changed.next_serial())
    return recorded


def open_breach_incident(incidents, stack, name: str, breach: dict):
    """An incident for a monitor's breach, naming the monitor and what it watches."""
    kinds = breach.get("breaches") or [breach.get("kind", "drift")]
    kind = "performance_breach" if "performance" in kinds else "drift_breach"
    spec = stack.resources.get(name)
    watched = [d for d in (spec.dependencies if spec else [])
               if d in stack.resources and stack.resources[d].type in ("endpoint", "batch_job")]
    return incidents.open(kind, f"{name}: {', '.join(kinds)} breach", [name, *watched],
                          measured=breach.get("values") or {},
                          detail=f"thresholds {breach.get('thresholds')}", subject=name)


def one_pass(session, say: Say, lock: Lock) -> PassResult:
    """One pass of every controller and policy."""
    from ..audit import AuditLog
    from ..incident_recovery import recoveries_from_evaluation, resolve
    from ..incidents import IncidentStore

    outcome = PassResult()
    audit = AuditLog(session.dir)
    incidents = IncidentStore(session.dir)
    for tick in tick_all(session, CONTROLLER_TYPES, say, lock, outcome):
        name, resp = tick.name, tick.response
        if resp.breach:
            audit.append(command=f"watch: {name}", result="breach", plan_digest=None,
                         changes=[{"resource": name,
                                   "action": f"breach: {resp.breach.get('kind')}"}],
                         detail={"breach": resp.breach})
            incident = open_breach_incident(incidents, session.stack, name, resp.breach)
            say(f"{name}: incident {incident.id} ({incident.kind}, {incident.status})")
        if resp.outputs is not None and "last_evaluation" in resp.outputs:
            resolve(session.dir, recoveries_from_evaluation(
                name, resp.outputs["last_evaluation"]), f"watch: {name}",
                say=lambda line, name=name: say(f"{name}: {line}"))
    for tick in tick_all(session, POLICY_TYPES, say, lock, outcome):
        if tick.response.retrain:
            _retrain(session, tick, say, lock, outcome, audit, incidents)
    return outcome


def _retrain(session, tick: Tick, say: Say, lock: Lock, outcome: PassResult, audit,
             incidents) -> None:
    """Replace the policy's training job and apply what follows from it, under the lock."""
    from ..diagnostics import MlformError
    from ..plan.planfile import digest
    from .plan_apply import _plan, run_apply

    name, resp = tick.name, tick.response
    policy = tick.spec.model if tick.spec else None
    if policy is None:
        say(f"{name}: asks for a retrain but is no longer in the spec; ignored")
        return
    if not tick.recorded:
        say(f"{name}: its decision was not recorded; the next pass decides again")
        return
    job = policy.training_job
    target = (policy.endpoint if policy.action == "retrain_and_deploy" and policy.endpoint
              else policy.model or job)
    say(f"{name}: retraining '{job}' because {resp.retrain}")
    # The monitors of what is redeployed follow it onto the new reference data.
    watchers = [n for n, r in session.stack.resources.items()
                if r.type == "monitor" and target in r.dependencies]
    session.options.targets = [target, *watchers]
    try:
        with lock():
            plan, doc, state = _plan(session, destroy=False, refresh=True, replace=(job,),
                                     notes={job: f"retraining policy {name}: {resp.retrain}"})
            result = run_apply(session, plan, state, f"watch: {name} retrain", digest(doc),
                               quiet=True)
        done = "rolled out" if result.ok else \
            "stopped: " + "; ".join(f"{n}: {e}" for n, e in result.failed.items())
    except MlformError as exc:
        done = f"stopped: {exc.diagnostics[0].summary}"
    finally:
        session.options.targets = []
    say(f"{name}: retrain {done}")
    if done != "rolled out":
        outcome.errors.append(f"{name}: retrain {done}")
        incident = incidents.open("job_failed", f"retrain of {job} by {name} failed",
                                  [name, job], measured={}, detail=done, subject=job)
        say(f"{name}: incident {incident.id} ({incident.kind})")
    audit.append(command=f"watch: {name}", result="ok" if done == "rolled out" else "failed",
                 plan_digest=None, changes=[{"resource": job, "action": "retrain"}],
                 detail={"reason": resp.retrain, "outcome": done})
    outcome.retrains += 1
