"""One pass of the controller: tick the monitors and scheduled jobs, record what they
measured, open and resolve incidents, decide every retraining policy, and run the
retrains that policies ask for.

The state lock is taken only for the moments that need a consistent state: reading
it before the ticks, writing what they measured after them, and each retrain (an
apply, which holds the lock while it changes state). Monitors evaluate and policies
decide with the lock free, so that `plan` and `apply` run meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .policies import decide_policy
from .ticks import Lock, PassResult, Say, Tick, tick_all

CONTROLLER_TYPES = ("monitor", "batch_job", "feature_view")
POLICY_TYPES = ("retraining_policy",)

if TYPE_CHECKING:  # the applier imports much; the controller only names its result
    from ..apply.applier import ApplyResult


@dataclass(frozen=True)
class RetrainRequest:
    """A targeted plan and its apply: `replace` re-runs, `targets` bounds the plan."""

    targets: tuple[str, ...]
    replace: tuple[str, ...]
    notes: dict[str, str]
    command: str
    """What the audit log names the apply."""


Retrain = Callable[[RetrainRequest], "ApplyResult"]
"""Plans and applies a RetrainRequest under the lock already held; returns the
ApplyResult (or raises MlformError)."""

__all__ = ["CONTROLLER_TYPES", "POLICY_TYPES", "PassResult", "RetrainRequest", "one_pass"]


def one_pass(session, say: Say, lock: Lock, retrain: Retrain) -> PassResult:
    """One pass of every controller and policy."""
    from ..audit import AuditLog
    from ..incident_opening import open_breach_incident
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
                say=_prefixed(say, name))
    from .experiments import run_experiments

    run_experiments(session, say, lock, retrain, outcome, audit)
    decided = tick_all(session, POLICY_TYPES, say, lock, outcome,
                       run=lambda p, res, req: decide_policy(p, res, req, session.dir))
    for tick in decided:
        if tick.response.retrain:
            _retrain(session, tick, say, lock, retrain, outcome, audit, incidents)
    return outcome


def _retrain(session, tick: Tick, say: Say, lock: Lock, retrain: Retrain,
             outcome: PassResult, audit, incidents) -> None:
    """Replace the policy's training job and apply what follows from it, under the lock."""
    from ..incident_opening import open_retrain_incident

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
    request = RetrainRequest(targets=(target, *watchers), replace=(job,),
                             notes={job: f"retraining policy {name}: {resp.retrain}"},
                             command=f"watch: {name} retrain")
    done = run_targeted(request, lock, retrain, "rolled out")
    say(f"{name}: retrain {done}")
    if done != "rolled out":
        outcome.errors.append(f"{name}: retrain {done}")
        incident = open_retrain_incident(incidents, name, job, done)
        say(f"{name}: incident {incident.id} ({incident.kind})")
    audit.append(command=f"watch: {name}", result="ok" if done == "rolled out" else "failed",
                 plan_digest=None, changes=[{"resource": job, "action": "retrain"}],
                 detail={"reason": resp.retrain, "outcome": done})
    outcome.retrains += 1


def run_targeted(request: RetrainRequest, lock: Lock, retrain: Retrain, done: str) -> str:
    """Apply `request` under the lock; `done` when it succeeded, else "stopped: <why>"."""
    from ..diagnostics import MlformError

    try:
        with lock():
            result = retrain(request)
    except MlformError as exc:
        return f"stopped: {exc.diagnostics[0].summary}"
    return done if result.ok else \
        "stopped: " + "; ".join(f"{n}: {e}" for n, e in result.failed.items())


def _prefixed(say: Say, name: str) -> Say:
    """`say` with each line prefixed by the resource it is about."""
    return lambda line: say(f"{name}: {line}")
