"""`mlform watch`: the controller loop for monitors and retraining policies.

Each pass ticks every monitor (and scheduled job), records what they measured,
then ticks every retraining policy; a policy that asks for a retrain gets a
targeted plan (its training job replaced, everything downstream re-planned) that
is applied at once: gates still guard registration and the endpoint's rollout
strategy still governs traffic. Every action goes to the audit log.
"""

from __future__ import annotations

import time

import click

from .common import common_options, stack_argument

CONTROLLER_TYPES = ("monitor", "batch_job", "feature_view")
POLICY_TYPES = ("retraining_policy",)


def tick_all(session, types: tuple[str, ...], say) -> list[tuple[str, object]]:
    """Tick every resource of `types` in state; record new outputs; return responses."""
    from ..provider import TickRequest
    from ..providerset import ref

    state = session.read_state()
    stack_outputs = {n: {**r.outputs, "id": r.id} for n, r in state.resources.items()}
    stack_inputs = {n: r.inputs for n, r in state.resources.items()}
    responses = []
    changed = state
    for name, res in sorted(state.resources.items()):
        if res.type not in types or res.status != "ready":
            continue
        spec = session.stack.resources.get(name)
        req = TickRequest(resource=ref(name, res.type, res.id), inputs=res.inputs,
                          outputs=res.outputs, stack_outputs=stack_outputs,
                          stack_inputs=stack_inputs, now=time.time())
        try:
            resp = session.providers.get(res.provider).tick(req)
        except Exception as exc:  # one broken controller must not stop the others
            say(f"{name}: error: {exc}")
            continue
        if resp is None:
            continue
        for line in resp.events:
            say(f"{name}: {line}")
        if resp.error:
            say(f"{name}: error: {resp.error}")
        if resp.outputs is not None:
            changed = changed.with_resource(res.with_(outputs={**res.outputs, **resp.outputs}))
            stack_outputs[name] = {**stack_outputs[name], **resp.outputs}
        responses.append((name, resp, spec))
    if changed is not state:
        session.backend.write(changed.next_serial())
    return responses


def open_breach_incident(incidents, stack, name: str, breach: dict):
    """An incident for a monitor's breach, naming the monitor and what it watches."""
    kinds = breach.get("breaches") or [breach.get("kind", "drift")]
    kind = "performance_breach" if "performance" in kinds else "drift_breach"
    spec = stack.resources.get(name)
    watched = [d for d in (spec.dependencies if spec else [])
               if stack.resources[d].type in ("endpoint", "batch_job")]
    return incidents.open(kind, f"{name}: {', '.join(kinds)} breach", [name, *watched],
                          measured=breach.get("values") or {},
                          detail=f"thresholds {breach.get('thresholds')}")


def one_pass(session, say) -> int:
    """One pass of every controller; returns the number of retrains started."""
    from ..audit import AuditLog
    from ..diagnostics import MlformError
    from ..incidents import IncidentStore
    from .plan_apply import _plan, run_apply

    audit = AuditLog(session.dir)
    incidents = IncidentStore(session.dir)
    for name, resp, _ in tick_all(session, CONTROLLER_TYPES, say):
        if resp.breach:
            audit.append(command=f"watch: {name}", result="breach", plan_digest=None,
                         changes=[{"resource": name, "action": f"breach: {resp.breach.get('kind')}"}],
                         detail={"breach": resp.breach})
            incident = open_breach_incident(incidents, session.stack, name, resp.breach)
            say(f"{name}: incident {incident.id} ({incident.kind}, {incident.status})")
    retrains = 0
    for name, resp, spec in tick_all(session, POLICY_TYPES, say):
        if not resp.retrain:
            continue
        policy = spec.model if spec else None
        if policy is None:
            say(f"{name}: asks for a retrain but is no longer in the spec; ignored")
            continue
        job = policy.training_job
        target = (policy.endpoint if policy.action == "retrain_and_deploy" and policy.endpoint
                  else policy.model or job)
        say(f"{name}: retraining '{job}' because {resp.retrain}")
        # The monitors of what is redeployed follow it onto the new reference data.
        watchers = [n for n, r in session.stack.resources.items()
                    if r.type == "monitor" and target in r.dependencies]
        session.options.targets = [target, *watchers]
        try:
            plan, doc, state = _plan(session, destroy=False, refresh=True, replace=(job,),
                                     notes={job: f"retraining policy {name}: {resp.retrain}"})
            from ..plan.planfile import digest

            result = run_apply(session, plan, state, f"watch: {name} retrain", digest(doc),
                               quiet=True)
            outcome = "rolled out" if result.ok else \
                "stopped: " + "; ".join(f"{n}: {e}" for n, e in result.failed.items())
        except MlformError as exc:
            outcome = f"stopped: {exc.diagnostics[0].summary}"
        finally:
            session.options.targets = []
        say(f"{name}: retrain {outcome}")
        if outcome != "rolled out":
            incident = incidents.open("job_failed", f"retrain of {job} by {name} failed",
                                      [name, job], measured={}, detail=outcome)
            say(f"{name}: incident {incident.id} ({incident.kind})")
        audit.append(command=f"watch: {name}", result="ok" if outcome == "rolled out" else
                     "failed", plan_digest=None,
                     changes=[{"resource": job, "action": "retrain"}],
                     detail={"reason": resp.retrain, "outcome": outcome})
        retrains += 1
    return retrains


@click.command("watch", help="Run monitors and retraining policies: once, or every --interval.")
@stack_argument
@common_options
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", default="30s", show_default=True, metavar="DURATION",
              help="Time between passes.")
def watch_cmd(opts, once, interval):
    from ..session import Session, parse_duration

    wait = parse_duration(interval)

    def say(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {line}")

    session = Session(opts, "watch")
    try:
        while True:
            with session.locked():
                one_pass(session, say)
            if once:
                return
            time.sleep(wait)
    except KeyboardInterrupt:
        say("stopped")
    finally:
        session.close()
