"""The monitor resource through its verbs, on real files under a temporary stack."""

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
    UpdateRequest,
)
from mlform.providers.local.monitoring.handler import MonitorHandler

REF = ResourceRef(name="fraud_monitor", type="monitor", id="fraud_monitor")
HOUR = 3600.0


@pytest.fixture
def handler(tmp_path: Path, paths) -> MonitorHandler:
    return MonitorHandler(ProviderContext(stack="fraud", stack_dir=tmp_path,
                                          provider_name="local", config={},
                                          data_dir=paths.root))


def inputs(reference_uri: str, **fields) -> dict:
    return {"endpoint": "fraud", "reference": reference_uri, "window_rows": 300,
            "min_rows": 100, "drift_share": 0.3, "schedule": "1h", **fields}


def tick(handler, inputs_, outputs, now) -> object:
    return handler.tick(TickRequest(resource=REF, inputs=inputs_, outputs=outputs,
                                    stack_outputs={}, stack_inputs={}, now=now))


@pytest.mark.parametrize(("fields", "error"), [
    pytest.param({"reference": "local://datasets/transactions/000000000000"},
                 "reference dataset 'local://datasets/transactions/000000000000' not found",
                 id="a reference that was never applied"),
    pytest.param({"reference": "s3://bucket/data.csv"}, "is not a dataset of the local provider",
                 id="a reference of another provider"),
    pytest.param({"features": ["amount", "balance"]}, "feature(s) 'balance' not in the reference",
                 id="a feature the reference lacks"),
    pytest.param({"endpoint": None, "batch_job": "scores"}, "batch job 'scores' has no output",
                 id="a batch job that never ran"),
    pytest.param({"numeric_method": "anderson"}, "numeric_method", id="an unknown method"),
    pytest.param({"performance": {"metric": "recall", "min": 0.5}},
                 "unknown performance metric 'recall': use one of accuracy, auc, f1, mae, r2, "
                 "rmse", id="an unknown performance metric"),
])
def test_create_refuses_what_cannot_be_monitored(handler, reference_uri, fields, error):
    response = handler.create(CreateRequest(REF, inputs(reference_uri, **fields), "k"), Progress())
    assert error in response.error


def test_lifecycle_create_tick_observe_update_delete(handler, paths, reference_uri,
                                                      log_traffic):
    spec = inputs(reference_uri)
    created = handler.create(CreateRequest(REF, spec, "key"), Progress())
    assert created.error is None and created.id == "fraud_monitor"
    assert created.outputs["last_evaluation"] is None

    log_traffic("fraud", requests=60, amount_mean=160.0)
    first = tick(handler, spec, created.outputs, now=1_000_000.0)
    last = first.outputs["last_evaluation"]
    assert (last["verdict"], last["drifted_features"], last["breaches"]) == \
        ("drift", ["amount"], ["drift"])
    assert first.breach["kind"] == "drift" and first.breach["features"] == ["amount"]
    assert first.breach["thresholds"] == {"amount": 0.1}
    assert first.events[0].startswith("monitor fraud_monitor: drift: 1 of 3 feature(s)")
    stored = json.loads(Path(last["evaluation"]).read_text())
    assert stored["verdict"] == "drift" and Path(last["report"]).read_text().startswith(
        "<!DOCTYPE html>")

    assert tick(handler, spec, first.outputs, now=1_000_000.0 + HOUR - 1).outputs is None
    second = tick(handler, spec, first.outputs, now=1_000_000.0 + HOUR)
    assert second.outputs["last_evaluation"]["t"] == 1_000_000.0 + HOUR
    assert len(list((paths.monitor("fraud_monitor") / "evaluations").glob("*.json"))) == 2

    observed = handler.observe(ObserveRequest(REF, spec, second.outputs))
    assert observed.exists and observed.inputs == spec
    assert observed.outputs["last_evaluation"] == second.outputs["last_evaluation"]

    changed = {**spec, "drift_share": 0.9}
    updated = handler.update(UpdateRequest(REF, spec, second.outputs, changed), Progress())
    assert updated.outputs["last_evaluation"] == second.outputs["last_evaluation"]
    assert handler.observe(ObserveRequest(REF, changed, updated.outputs)).inputs == changed

    handler.delete(DeleteRequest(REF, changed, updated.outputs), Progress())
    assert not paths.monitor("fraud_monitor").exists()
    assert not handler.observe(ObserveRequest(REF, changed, updated.outputs)).exists


def test_too_little_traffic_is_reported_without_a_breach(handler, reference_uri, log_traffic):
    spec = inputs(reference_uri)
    log_traffic("fraud", requests=3)
    response = tick(handler, spec, {"last_evaluation": None}, now=1_000_000.0)
    assert response.outputs["last_evaluation"]["verdict"] == "insufficient_data"
    assert response.breach is None


def test_performance_breach(handler, reference_uri, log_traffic):
    spec = inputs(reference_uri, performance={"metric": "accuracy", "min": 0.9})
    log_traffic("fraud", requests=60, accuracy=0.5)
    response = tick(handler, spec, {}, now=1_000_000.0)
    assert response.breach["kind"] == "performance"
    assert response.breach["thresholds"]["accuracy"] == {"min": 0.9, "max": None}
    assert response.breach["values"]["accuracy"] < 0.9


def test_a_missing_reference_at_tick_is_an_error_not_a_crash(handler, paths, reference_uri,
                                                              log_traffic):
    log_traffic("fraud", requests=20)
    (paths.resolve(reference_uri) / "data.csv").unlink()
    response = tick(handler, inputs(reference_uri), {}, now=1_000_000.0)
    assert "monitor 'fraud_monitor' could not evaluate: no data.csv or data.parquet" in \
        response.error
