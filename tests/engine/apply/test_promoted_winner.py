"""An experiment's promoted winner: the plan shows it and the apply realises exactly
what the plan showed (both take the desired inputs from
`mlform.ml.experiments.promotion.desired_inputs`), for each verdict a provider can
have recorded."""

from __future__ import annotations

import json

import pytest
from mlform.engine.apply.applier import Applier
from mlform.engine.plan.planner import PlanOptions, make_plan
from mlform.engine.session import Options, Session

SPEC = """\
version: 1
stack: promotes
providers:
  null: {}
resources:
  scorer:
    type: endpoint
    variants:
      current: {model: "m/1", weight: 50}
      challenger: {model: "m/2", weight: 50}
      mirror: {model: "m/3", weight: 0, shadow: true}
    experiment: {name: ranker, control: current, promote_winner: PROMOTE}
"""
WINNER = {"name": "ranker", "status": "winner", "winner": "challenger", "summary": "+0.2"}


def _session(stack):
    return Session(Options(stack_dir=stack), "apply")


def _record_verdict(stack, verdict) -> None:
    """What the provider's tick recorded with the endpoint (`mlform watch`)."""
    path = stack / ".mlform" / "state.json"
    state = json.loads(path.read_text())
    resource = state["resources"]["scorer"]
    resource["private"] = {**(resource.get("private") or {}), "experiment": verdict}
    path.write_text(json.dumps(state))


def _plan_then_apply(stack):
    session = _session(stack)
    try:
        state = session.read_state()
        plan = make_plan(session.stack, state, session.variables, session.providers,
                         PlanOptions())
        result = Applier(session.stack, state, session.variables, session.providers,
                         session.backend, parallelism=2).apply(plan)
        assert result.ok, result.failed
        return plan, session.read_state()
    finally:
        session.close()


@pytest.mark.parametrize(("promote", "verdict", "weights"), [
    pytest.param("true", WINNER, {"current": 0, "challenger": 100, "mirror": 0},
                 id="the recorded winner is promoted"),
    pytest.param("false", WINNER, {"current": 50, "challenger": 50, "mirror": 0},
                 id="without promote_winner the spec's weights stand"),
    pytest.param("true", {**WINNER, "name": "last-month"},
                 {"current": 50, "challenger": 50, "mirror": 0},
                 id="another experiment's winner is not this one's"),
    pytest.param("true", {"name": "ranker", "status": "collecting", "winner": None},
                 {"current": 50, "challenger": 50, "mirror": 0},
                 id="no verdict yet"),
    pytest.param("true", {**WINNER, "winner": "retired"},
                 {"current": 50, "challenger": 50, "mirror": 0},
                 id="a winner that is no longer a variant"),
])
def test_the_apply_realises_the_promotion_its_plan_showed(null_stack, promote, verdict,
                                                           weights):
    stack = null_stack(SPEC.replace("PROMOTE", promote))
    _plan_then_apply(stack)
    _record_verdict(stack, verdict)

    plan, state = _plan_then_apply(stack)
    [change] = [c for c in plan.changes if c.name == "scorer"] or [None]
    planned = change.after["variants"] if change is not None else None
    applied = state.resources["scorer"].inputs["variants"]
    assert {k: v["weight"] for k, v in applied.items()} == weights
    if weights["challenger"] == 100:
        assert planned == applied
        assert change.reasons[0].startswith("experiment ranker found a winner: variant "
                                            "'challenger' (+0.2)")
    else:
        assert change is None or change.action.value == "no-op"
    # with the verdict still recorded (a provider keeps it across updates; the null
    # provider does not, so it is recorded again), the next plan holds no change
    _record_verdict(stack, verdict)
    again, _ = _plan_then_apply(stack)
    assert [c.name for c in again.changes if c.action.value != "no-op"] == []


@pytest.mark.parametrize(("rtype", "recorded"), [
    pytest.param("model", {"experiment": WINNER}, id="only an endpoint promotes"),
    pytest.param("endpoint", None, id="an endpoint not created yet has no verdict"),
])
def test_desired_inputs_are_the_spec_s_when_nothing_is_promoted(rtype, recorded):
    from mlform.ml.experiments.promotion import desired_inputs

    evaluated = {"variants": {"current": {"model": "m/1", "weight": 50},
                              "challenger": {"model": "m/2", "weight": 50}},
                 "experiment": {"name": "ranker", "promote_winner": True}}
    assert desired_inputs(rtype, evaluated, recorded) == (evaluated, "")
