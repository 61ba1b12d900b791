"""The retraining policy's decisions on each pass of `mlform watch`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    ObserveRequest,
    Progress,
    ProviderContext,
    ResourceRef,
    TickRequest,
)
from mlform.providers.local.paths import LocalPaths
from mlform.providers.local.retraining import RetrainingPolicyHandler

REF = ResourceRef(name="retrain_on_drift", type="retraining_policy", id="retrain_on_drift")
NOW = 1_000_000.0
HOUR = 3600.0
SOURCE = "data/transactions.csv"


@pytest.fixture
def handler(tmp_path: Path) -> RetrainingPolicyHandler:
    (tmp_path / "data").mkdir()
    (tmp_path / SOURCE).write_text("amount,is_fraud\n1.0,0\n")
    return RetrainingPolicyHandler(ProviderContext(
        stack="fraud", stack_dir=tmp_path, provider_name="local", config={},
        data_dir=tmp_path / ".mlform" / "local"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def evaluation(verdict: str, t: float, breaches=None) -> dict:
    breaches = [verdict] if breaches is None and verdict in ("drift", "performance") \
        else breaches or []
    return {"last_evaluation": {"time": f"t{t:.0f}", "t": t, "verdict": verdict,
                                "breaches": breaches, "drifted_features": ["amount"]}}


def last_action(t: float, data: dict | None = None) -> dict:
    return {"t": t, "time": f"t{t:.0f}", "action": "retrain", "reason": "earlier",
            "training_job": "train", "data": data or {}}


MONITOR = [{"monitor": "fraud_monitor"}]


# (triggers, monitor outputs, policy's last action, created_at, retrain reason expected)
CASES = [
    pytest.param(MONITOR, evaluation("drift", NOW - 60), None, NOW - HOUR,
                 "monitor fraud_monitor found drift at t999940 (amount)",
                 id="monitor: drift never acted on retrains"),
    pytest.param(MONITOR, evaluation("drift", NOW - 2 * HOUR), last_action(NOW - HOUR),
                 NOW - 3 * HOUR, None, id="monitor: drift older than the last retrain waits"),
    pytest.param(MONITOR, evaluation("drift", NOW - 60), last_action(NOW - 2 * HOUR),
                 NOW - 3 * HOUR, "monitor fraud_monitor found drift",
                 id="monitor: drift newer than the last retrain retrains"),
    pytest.param(MONITOR, evaluation("ok", NOW - 60), None, NOW - HOUR, None,
                 id="monitor: ok does not retrain"),
    pytest.param(MONITOR, evaluation("insufficient_data", NOW - 60), None, NOW - HOUR, None,
                 id="monitor: too little data does not retrain"),
    pytest.param(MONITOR, {}, None, NOW - HOUR, None, id="monitor: not evaluated yet"),
    pytest.param([{"monitor": "fraud_monitor", "on": "performance"}],
                 evaluation("drift", NOW - 60), None, NOW - HOUR, None,
                 id="monitor: drift does not answer on=performance"),
    pytest.param([{"monitor": "fraud_monitor", "on": "performance"}],
                 evaluation("performance", NOW - 60, ["drift", "performance"]), None,
                 NOW - HOUR, "monitor fraud_monitor found performance at",
                 id="monitor: a performance breach answers on=performance"),
    pytest.param([{"schedule": "1d"}], {}, None, NOW - 25 * HOUR,
                 "schedule 1d: last retrain", id="schedule: a day since creation retrains"),
    pytest.param([{"schedule": "1d"}], {}, None, NOW - 23 * HOUR, None,
                 id="schedule: under a day since creation waits"),
    pytest.param([{"schedule": "1d"}], {}, last_action(NOW - 2 * HOUR), NOW - 30 * HOUR, None,
                 id="schedule: counts from the last retrain"),
]


@pytest.mark.parametrize(("triggers", "monitor", "last", "created_at", "reason"), CASES)
def test_triggers(handler, triggers, monitor, last, created_at, reason):
    response = handler.tick(TickRequest(
        resource=REF, inputs={"training_job": "train", "triggers": triggers, "cooldown": "1h"},
        outputs={"last_action": last, "created_at": created_at},
        stack_outputs={"fraud_monitor": monitor}, stack_inputs={}, now=NOW))
    if reason is None:
        assert response.retrain is None and response.outputs is None
    else:
        assert response.retrain.startswith(reason)
        assert response.outputs["last_action"]["t"] == NOW
        assert response.outputs["last_action"]["reason"] == response.retrain


def new_data_tick(handler, version: str, last=None):
    return handler.tick(TickRequest(
        resource=REF, inputs={"training_job": "train", "triggers": [{"new_data": "transactions"}],
                              "cooldown": "1h"},
        outputs={"last_action": last, "created_at": NOW - HOUR},
        stack_outputs={"transactions": {"version": version}},
        stack_inputs={"transactions": {"source": SOURCE}}, now=NOW))


@pytest.mark.parametrize(("version", "acted_on", "fires"), [
    pytest.param("from-source", None, False, id="source unchanged since apply"),
    pytest.param("0123456789ab", None, True, id="source changed since apply"),
    pytest.param("0123456789ab", "from-source", False, id="change already acted on"),
])
def test_new_data(handler, version, acted_on, fires):
    current = digest(handler.ctx.stack_dir / SOURCE)
    version = current if version == "from-source" else version
    last = last_action(NOW - 2 * HOUR, {"transactions": current}) if acted_on else None
    response = new_data_tick(handler, version, last)
    assert (response.retrain is not None) is fires
    if fires:
        assert response.retrain == (f"new data in transactions: '{SOURCE}' is {current}, "
                                    f"state has {version}")
        assert response.outputs["last_action"]["data"] == {"transactions": current}


@pytest.mark.parametrize(("since_last", "acts"), [
    pytest.param(10 * 60, False, id="ten minutes after a retrain the cooldown holds"),
    pytest.param(HOUR, True, id="an hour after a retrain the cooldown is over"),
])
def test_cooldown(handler, since_last, acts):
    response = handler.tick(TickRequest(
        resource=REF, inputs={"training_job": "train", "triggers": MONITOR, "cooldown": "1h"},
        outputs={"last_action": last_action(NOW - since_last), "created_at": NOW - 5 * HOUR},
        stack_outputs={"fraud_monitor": evaluation("drift", NOW - 60)}, stack_inputs={},
        now=NOW))
    assert (response.retrain is not None) is acts
    decision = json.loads(actions_log(handler).read_text().splitlines()[-1])
    assert decision["acted"] is acts
    assert (decision["held_by_cooldown_until"] is None) is acts
    if not acts:
        assert "held back by the cooldown of 1h until" in response.events[0]


def test_record_only_records_and_reports_without_retraining(handler):
    response = handler.tick(TickRequest(
        resource=REF, inputs={"training_job": "train", "triggers": MONITOR,
                              "action": "record_only"},
        outputs={"last_action": None, "created_at": NOW - HOUR},
        stack_outputs={"fraud_monitor": evaluation("drift", NOW - 60)}, stack_inputs={},
        now=NOW))
    assert response.retrain is None
    assert response.outputs["last_action"]["action"] == "record_only"
    assert response.events == ["policy retrain_on_drift: would retrain 'train' (record_only): "
                               "monitor fraud_monitor found drift at t999940 (amount)"]


def test_every_decision_is_logged_with_its_reasons(handler):
    for verdict in ("ok", "drift"):
        handler.tick(TickRequest(
            resource=REF, inputs={"training_job": "train", "triggers": MONITOR},
            outputs={"last_action": None, "created_at": NOW - HOUR},
            stack_outputs={"fraud_monitor": evaluation(verdict, NOW - 60)}, stack_inputs={},
            now=NOW))
    decisions = [json.loads(line) for line in actions_log(handler).read_text().splitlines()]
    assert [(d["acted"], d["checks"]) for d in decisions] == [
        (False, ["monitor fraud_monitor: ok at t999940"]),
        (True, ["monitor fraud_monitor found drift at t999940 (amount)"])]


def test_create_observe_delete(handler):
    spec = {"training_job": "train", "triggers": MONITOR}
    created = handler.create(CreateRequest(REF, spec, "key"), Progress())
    assert created.outputs["last_action"] is None and created.id == REF.name
    assert handler.observe(ObserveRequest(REF, spec, created.outputs)).inputs == spec
    handler.delete(DeleteRequest(REF, spec, created.outputs), Progress())
    assert not handler.observe(ObserveRequest(REF, spec, created.outputs)).exists


def test_create_refuses_a_trigger_of_two_kinds(handler):
    spec = {"training_job": "train", "triggers": [{"monitor": "m", "schedule": "1h"}]}
    response = handler.create(CreateRequest(REF, spec, "key"), Progress())
    assert "a trigger has exactly one of 'monitor', 'schedule' or 'new_data'" in response.error


def actions_log(handler) -> Path:
    return LocalPaths(handler.ctx.data_dir).policy(REF.name) / "actions.jsonl"
