"""The controller's part in A/B experiments: record each endpoint experiment's verdict,
write a decided verdict to the audit log once, and promote a winner the spec asks to
promote (a targeted apply of the endpoint: the planner then wants the winner at 100,
see `mlform.ml.experiments.promotion`, and the endpoint's rollout moves the traffic).
"""

from __future__ import annotations

from .passes import Retrain, RetrainRequest, run_targeted
from .ticks import Lock, PassResult, Say, Tick, tick_all

DECIDED = ("winner", "no_difference")


def run_experiments(session, say: Say, lock: Lock, retrain: Retrain, outcome: PassResult,
                    audit) -> list[Tick]:
    """Tick every endpoint (those with an experiment answer); returns their ticks."""
    with lock():
        before = {n: r.provider_outputs.get("experiment")
                  for n, r in session.read_state().resources.items() if r.type == "endpoint"}
    ticks = [t for t in tick_all(session, ("endpoint",), say, lock, outcome)
             if (t.response.outputs or {}).get("experiment")]
    for tick in ticks:
        verdict = (tick.response.outputs or {})["experiment"]
        previous = before.get(tick.name) or {}
        if verdict["status"] in DECIDED and tick.recorded and (
                (previous.get("name"), previous.get("status"), previous.get("winner"))
                != (verdict["name"], verdict["status"], verdict["winner"])):
            audit.append(command=f"experiment: {tick.name}", result=verdict["status"],
                         plan_digest=None,
                         changes=[{"resource": tick.name,
                                   "action": f"experiment {verdict['name']}: "
                                             f"{verdict['status']}"}],
                         detail={"experiment": verdict})
        _promote(session, tick, verdict, say, lock, retrain, outcome, audit)
    return ticks


def _promote(session, tick: Tick, verdict: dict, say: Say, lock: Lock, retrain: Retrain,
             outcome: PassResult, audit) -> None:
    """Roll the winner out when the spec asks for it and it is not serving all traffic."""
    spec = tick.spec.model if tick.spec is not None else None
    experiment = getattr(spec, "experiment", None)
    if experiment is None or not experiment.promote_winner or verdict["status"] != "winner" \
            or verdict["name"] != experiment.name or not tick.recorded:
        return
    with lock():
        current = session.read_state().resources.get(tick.name)
    traffic = (current.outputs.get("traffic") if current else None) or {}
    if traffic.get(verdict["winner"], 0) >= 100:
        return
    say(f"{tick.name}: promoting variant '{verdict['winner']}', the winner of experiment "
        f"{verdict['name']}")
    request = RetrainRequest(targets=(tick.name,), replace=(), notes={},
                             command=f"experiment: {tick.name} promote")
    done = run_targeted(request, lock, retrain, "promoted")
    say(f"{tick.name}: {done}")
    if done != "promoted":
        outcome.errors.append(f"{tick.name}: promotion {done}")
