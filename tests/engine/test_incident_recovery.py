"""Which incidents end on their own: the recovery rules, table-driven, and the store
resolving only unresolved incidents of the right kind about the right subject."""

from __future__ import annotations

import json

import pytest
from mlform.engine.apply.applier import ApplyResult
from mlform.engine.audit import AuditLog
from mlform.engine.incident_recovery import (
    recoveries_from_apply,
    recoveries_from_evaluation,
    resolve,
)
from mlform.engine.incidents import KINDS, IncidentStore
from mlform.engine.state.model import ResourceState, State


def evaluation(verdict, breaches=(), share=0.1, performance=None):
    return {"time": "T", "t": 1.0, "verdict": verdict, "breaches": list(breaches),
            "share": share, "performance": performance}


PASSED = {"metric": "auc", "value": 0.91, "passed": True}
FAILED = {"metric": "auc", "value": 0.61, "passed": False}
UNKNOWN = {"metric": "auc", "value": None, "passed": None}


@pytest.mark.parametrize(("last", "kinds"), [
    # no drift and performance in bounds: both kinds of breach recovered
    (evaluation("ok", performance=PASSED), [("drift_breach",), ("performance_breach",)]),
    # no drift, no feedback to judge performance on: only drift is known to be fine
    (evaluation("ok", performance=UNKNOWN), [("drift_breach",)]),
    # drift persists, performance is back in bounds
    (evaluation("drift", ["drift"], share=0.7, performance=PASSED), [("performance_breach",)]),
    # performance still out of bounds, no drift
    (evaluation("performance", ["performance"], performance=FAILED), [("drift_breach",)]),
    # too little traffic: nothing measured, nothing recovered
    (evaluation("insufficient_data", share=None), []),
    (None, []),
], ids=["all-ok", "ok-without-feedback", "drift-stays", "performance-stays",
        "insufficient-data", "no-evaluation"])
def test_what_an_evaluation_recovers(last, kinds):
    found = recoveries_from_evaluation("mon", last)
    assert [k for _, k, _ in found] == kinds
    assert all(subject == "mon" for subject, _, _ in found)


def res(name, rtype):
    return ResourceState(name=name, type=rtype, provider="local", id=name, inputs={},
                         outputs={})


def state(*resources):
    return State.new("s").next_serial(resources={r.name: r for r in resources})


def test_what_an_apply_recovers_and_ends():
    prior = state(res("ep", "endpoint"), res("old_mon", "monitor"), res("m", "model"))
    after = state(res("ep", "endpoint"), res("m", "model"), res("job", "training_job"),
                  res("data", "dataset"))
    done = ApplyResult(state=after, done={"ep": "update", "m": "create", "job": "replace",
                                          "data": "create", "old_mon": "delete"})
    assert recoveries_from_apply(prior, done) == [
        ("ep", ("rollback",), "endpoint 'ep' rolled out (update)"),
        ("job", ("job_failed",), "training_job 'job' trained (replace)"),
        ("m", ("gate_failed",), "model 'm' passed its gates and was registered (create)"),
        ("old_mon", KINDS, "monitor 'old_mon' was destroyed")]

    # a job that trained in an apply that failed further on (its model's gate, its
    # rollout) did not make the retrain succeed
    partly = ApplyResult(state=after, done={"job": "replace"}, failed={"m": "gate failed"})
    assert recoveries_from_apply(after, partly) == []


def test_only_unresolved_incidents_of_the_kind_about_the_subject_resolve(tmp_path):
    store = IncidentStore(tmp_path)
    drift = store.open("drift_breach", "mon: drift breach", ["mon", "ep"], subject="mon")
    perf = store.open("performance_breach", "mon: performance breach", ["mon", "ep"],
                      subject="mon")
    rollback = store.open("rollback", "endpoint ep rolled back", ["ep", "m"], subject="ep")
    legacy = store.open("gate_failed", "model m: a gate failed", ["m"])  # before subjects
    done = store.open("drift_breach", "other: drift breach", ["other"], subject="other")
    store.resolve(done.id, "alice", "fixed the feed")

    resolved = resolve(tmp_path, [("mon", ("drift_breach",), "monitor 'mon' found no drift"),
                                  ("ep", KINDS, "endpoint 'ep' was destroyed"),
                                  ("m", ("gate_failed",), "model 'm' was registered"),
                                  ("other", KINDS, "monitor 'other' was destroyed")],
                       "apply")
    assert [i.id for i in resolved] == [drift.id, rollback.id, legacy.id]
    assert store.get(perf.id).status == "open"  # performance was not shown to recover
    again = store.get(drift.id)
    assert (again.status, again.resolved_by, again.resolution) == (
        "resolved", "mlform", "monitor 'mon' found no drift, in 'apply'")
    assert again.timeline[-1].text == \
        "resolved automatically: monitor 'mon' found no drift, in 'apply'"
    assert store.get(done.id).resolved_by == "alice"  # a resolved incident stays as it was

    entries = AuditLog(tmp_path).entries()
    assert [e["command"] for e in entries] == [
        f"apply: resolve incident {i.id}" for i in (drift, rollback, legacy)]
    assert entries[0]["detail"] == {
        "incident": drift.id, "kind": "drift_breach", "title": "mon: drift breach",
        "resolved_by": "mlform", "automatic": True,
        "reason": "monitor 'mon' found no drift, in 'apply'"}
    assert AuditLog(tmp_path).verify() == []


def test_nothing_is_written_where_no_incident_was_ever_opened(tmp_path):
    assert resolve(tmp_path, [("ep", KINDS, "endpoint 'ep' was destroyed")], "destroy") == []
    assert not (tmp_path / ".mlform").exists()


def test_incidents_stored_before_subjects_existed_still_read(tmp_path):
    store = IncidentStore(tmp_path)
    incident = store.open("rollback", "endpoint ep rolled back", ["ep", "m"])
    path = tmp_path / ".mlform" / "incidents" / f"{incident.id}.json"
    data = json.loads(path.read_text())
    del data["subject"], data["resolution"]
    path.write_text(json.dumps(data))
    old = store.get(incident.id)
    assert (old.subject, old.is_about("ep"), old.is_about("x")) == (None, True, False)
