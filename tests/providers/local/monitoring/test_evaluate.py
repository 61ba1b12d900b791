"""Evaluations of a logged traffic file against a reference dataset on disk."""

from __future__ import annotations

import json

import pytest
from mlform.engine.spec.models import Monitor
from mlform.ml.monitoring.evaluate import evaluate, read_reference
from mlform.ml.serving.traffic import read_traffic


def monitor(reference_uri: str, **fields) -> Monitor:
    return Monitor.model_validate({"type": "monitor", "endpoint": "fraud",
                                   "reference": reference_uri, "window_rows": 300,
                                   "min_rows": 100, "drift_share": 0.3, **fields})


def run(paths, reference_uri, **fields) -> dict:
    spec = monitor(reference_uri, **fields)
    return evaluate(spec, read_traffic(paths.endpoint("fraud")),
                    read_reference(paths.resolve(reference_uri)), now=2_000_000_000.0,
                    name="fraud_monitor")


@pytest.mark.parametrize(("amount_mean", "accuracy", "performance", "verdict", "drifted"), [
    pytest.param(100.0, 1.0, None, "ok", [], id="traffic like the reference is ok"),
    pytest.param(160.0, 1.0, None, "drift", ["amount"], id="a shifted amount is drift"),
    pytest.param(100.0, 0.6, {"metric": "accuracy", "min": 0.9}, "performance", [],
                 id="wrong predictions breach the accuracy floor"),
    pytest.param(100.0, 0.95, {"metric": "accuracy", "min": 0.9}, "ok", [],
                 id="predictions above the accuracy floor are ok"),
])
def test_verdict(paths, reference_uri, log_traffic, amount_mean, accuracy, performance,
                 verdict, drifted):
    log_traffic("fraud", requests=60, amount_mean=amount_mean, accuracy=accuracy)
    result = run(paths, reference_uri, **({"performance": performance} if performance else {}))
    assert result["verdict"] == verdict
    assert result["drift"]["drifted_features"] == drifted
    assert result["rows"] == {"current": 300, "reference": 2000}


def test_each_feature_reports_method_value_threshold_and_verdict(paths, reference_uri,
                                                                  log_traffic):
    log_traffic("fraud", requests=60, amount_mean=160.0)
    result = run(paths, reference_uri, categorical_method="chisquare")
    by_name = {f["name"]: f for f in result["features"]}
    assert [(by_name[n]["kind"], by_name[n]["method"], by_name[n]["threshold"])
            for n in ("amount", "age", "country")] == [
        ("numeric", "wasserstein", 0.1), ("numeric", "wasserstein", 0.1),
        ("categorical", "chisquare", 0.05)]
    assert by_name["amount"]["value"] > 2.0  # three reference stds away
    assert result["drift"]["share"] == pytest.approx(1 / 3)


def test_performance_is_scored_on_requests_with_feedback_only(paths, reference_uri,
                                                              log_traffic):
    log_traffic("fraud", requests=30, accuracy=1.0, seed=2)
    log_traffic("fraud", requests=30, accuracy=0.0, seed=3, feedback=False, start=5_000.0)
    result = run(paths, reference_uri, performance={"metric": "accuracy", "min": 0.9})
    assert result["performance"] == {"metric": "accuracy", "value": 1.0, "min": 0.9,
                                     "max": None, "rows": 300, "passed": True, "note": ""}


def test_a_metric_the_labels_cannot_give_is_not_scored_and_not_a_breach(
        paths, reference_uri, log_traffic, tmp_path):
    log_traffic("fraud", requests=30)
    feedback = paths.endpoint("fraud") / "feedback.jsonl"
    one_class = [{**json.loads(line), "labels": [0] * 10}
                 for line in feedback.read_text().splitlines()]
    feedback.write_text("".join(json.dumps(r) + "\n" for r in one_class))
    result = run(paths, reference_uri, performance={"metric": "auc", "min": 0.8})
    assert result["performance"]["passed"] is None
    assert result["performance"]["note"] == \
        "not scored: auc is undefined on these labels (1 distinct value(s))"
    assert result["verdict"] == "ok"


def test_fewer_rows_than_min_rows_claim_nothing(paths, reference_uri, log_traffic):
    log_traffic("fraud", requests=5, amount_mean=500.0)
    result = run(paths, reference_uri)
    assert result["verdict"] == "insufficient_data"
    assert result["breaches"] == [] and result["features"] == []
    assert "50 logged instance(s)" in result["summary"]


@pytest.mark.parametrize(("always", "drifted"), [
    pytest.param(None, False, id="the same model answering alike is no output drift"),
    pytest.param(1, True, id="a model that now always says fraud is output drift"),
])
def test_output_drift_compares_the_newest_predictions_with_the_first(
        paths, reference_uri, log_traffic, always, drifted):
    log_traffic("fraud", requests=30, seed=2)
    log_traffic("fraud", requests=30, seed=3, start=5_000.0, always=always)
    output = run(paths, reference_uri)["output_drift"]
    assert (output["baseline_rows"], output["kind"], output["method"]) == \
        (300, "categorical", "jensenshannon")
    assert output["drifted"] is drifted


def test_no_output_drift_until_a_baseline_window_is_logged(paths, reference_uri, log_traffic):
    log_traffic("fraud", requests=35)
    assert run(paths, reference_uri)["output_drift"] is None


def test_named_features_absent_from_the_reference_are_an_error(paths, reference_uri,
                                                               log_traffic):
    log_traffic("fraud", requests=20)
    with pytest.raises(ValueError, match="feature\\(s\\) 'balance' not in the reference"):
        run(paths, reference_uri, features=["amount", "balance"])
