"""The local retraining policy: its configuration on disk and its log of the engine's
decisions (the decisions themselves are tested in tests/ml/test_retraining.py)."""

from __future__ import annotations

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
MONITOR = [{"monitor": "fraud_monitor"}]


@pytest.fixture
def handler(tmp_path: Path) -> RetrainingPolicyHandler:
    return RetrainingPolicyHandler(ProviderContext(
        stack="fraud", stack_dir=tmp_path, provider_name="local", config={},
        data_dir=tmp_path / ".mlform" / "local"))


def tick(handler, decision):
    return handler.tick(TickRequest(
        resource=REF, inputs={"training_job": "train", "triggers": MONITOR}, outputs={},
        stack_outputs={}, stack_inputs={}, now=1.0, decision=decision))


def test_every_decision_the_engine_hands_over_is_logged(handler):
    decisions = [{"t": 1.0, "acted": False, "checks": ["monitor fraud_monitor: ok at t1"]},
                 {"t": 2.0, "acted": True, "checks": ["monitor fraud_monitor found drift"]}]
    for decision in decisions:
        assert tick(handler, decision).error is None
    logged = LocalPaths(handler.ctx.data_dir).policy(REF.name) / "actions.jsonl"
    assert [json.loads(line) for line in logged.read_text().splitlines()] == decisions


def test_a_tick_without_a_decision_does_nothing(handler):
    assert tick(handler, None) is None
    assert not LocalPaths(handler.ctx.data_dir).policy(REF.name).exists()


def test_create_observe_delete(handler):
    spec = {"training_job": "train", "triggers": MONITOR}
    created = handler.create(CreateRequest(REF, spec, "key"), Progress())
    assert created.outputs["last_action"] is None and created.id == REF.name
    assert isinstance(created.outputs["created_at"], float)
    assert handler.observe(ObserveRequest(REF, spec, created.outputs)).inputs == spec
    handler.delete(DeleteRequest(REF, spec, created.outputs), Progress())
    assert not handler.observe(ObserveRequest(REF, spec, created.outputs)).exists


def test_create_refuses_a_trigger_of_two_kinds(handler):
    spec = {"training_job": "train", "triggers": [{"monitor": "m", "schedule": "1h"}]}
    response = handler.create(CreateRequest(REF, spec, "key"), Progress())
    assert "a trigger has exactly one of 'monitor', 'schedule' or 'new_data'" in response.error
