"""The contract's fraud stack through its life on this machine: apply and serve, new data
under live traffic, a dead server healed, a failing gate, a rolled-back canary, destroy.

The tests share one stack and run in file order, each starting from where the
previous one left the stack (as a user's session would).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from .conftest import (
    INSTANCE,
    Traffic,
    assert_no_processes,
    health,
    mlform_ok,
    output,
    port_open,
    server_record,
    servers_of,
    training_processes,
    write_fraud_data,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APPLY = ["apply", "--auto-approve", "--no-color"]


def served_model(url: str) -> str:
    body = health(url)
    assert body["canary"] is None, body
    return body["variants"]["champion"]["model"]


def test_apply_serves_predictions_health_metrics_and_feedback(fraud_stack_dir, run_mlform):
    mlform_ok(run_mlform, APPLY, fraud_stack_dir, timeout=300)
    url = output(run_mlform, fraud_stack_dir, "url")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)

    predicted = httpx.post(f"{url}/predict", json={"instances": [INSTANCE, [12.5, 14, 0.05,
                                                                            2400, 0]]})
    assert predicted.status_code == 200, predicted.text
    answer = predicted.json()
    assert len(answer["predictions"]) == 2
    assert set(answer["predictions"]) <= {0, 1}
    assert answer["variant"] == "champion"

    assert served_model(url) == "local://models/fraud_model/1"

    metrics = httpx.get(f"{url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    series = 'variant="champion"'
    assert re.search(rf'mlform_endpoint_requests_total\{{[^}}]*{series}[^}}]*\}} 1\.0',
                     metrics.text), metrics.text
    assert re.search(rf'mlform_endpoint_instances_total\{{[^}}]*{series}[^}}]*\}} 2\.0',
                     metrics.text), metrics.text

    feedback = httpx.post(f"{url}/feedback", json={"id": answer["id"], "labels": [1, 0]})
    assert feedback.status_code == 202, feedback.text
    # the server writes its logs in the background, every half second
    feedback_log = fraud_stack_dir / ".mlform/local/endpoints/fraud_endpoint/feedback.jsonl"
    deadline = time.monotonic() + 5
    while not feedback_log.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert json.loads(feedback_log.read_text().splitlines()[-1])["labels"] == [1, 0]

    second = run_mlform(["plan", "--detailed-exitcode", "--no-color"], fraud_stack_dir)
    assert second.returncode == 0, second.stdout + second.stderr
    assert not training_processes(fraud_stack_dir)


def test_scores_explanations_and_feature_importance(fraud_stack_dir, run_mlform):
    """The applied stack answers class probabilities and explanations over HTTP, and its
    model card ranks the features by permutation importance (docs/ml-depth.md)."""
    url = output(run_mlform, fraud_stack_dir, "url")
    instances = [INSTANCE, [12.5, 14, 0.05, 2400, 0]]
    scored = httpx.post(f"{url}/predict", json={"instances": instances,
                                                "return": "probabilities"})
    assert scored.status_code == 200, scored.text
    answer = scored.json()
    assert answer["classes"] == [0, 1]
    for label, probabilities in zip(answer["predictions"], answer["probabilities"],
                                    strict=True):
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-9)
        assert label == answer["classes"][probabilities.index(max(probabilities))]

    explained = httpx.post(f"{url}/explain", json={"instances": instances})
    assert explained.status_code == 200, explained.text
    first = explained.json()["explanations"][0]
    assert first["prediction"] == answer["predictions"][0]
    assert first["score"] == pytest.approx(max(answer["probabilities"][0]))
    shown = json.loads(mlform_ok(run_mlform, ["show", "fraud_model", "--json"],
                                 fraud_stack_dir).stdout)
    card = json.loads((Path(shown["outputs"]["card"]).parent / "card.json").read_text())
    assert set(first["attributions"]) == set(card["features"])
    importance = card["importance"]
    assert importance["method"] == "permutation"
    assert {f["feature"] for f in importance["features"]} == set(card["features"])


def test_new_data_retrains_and_rolls_out_without_a_failed_request(fraud_stack_dir,
                                                                   run_mlform):
    url_before = output(run_mlform, fraud_stack_dir, "url")
    write_fraud_data(fraud_stack_dir, seed=2)

    plan = mlform_ok(run_mlform, ["plan", "--format", "json"], fraud_stack_dir)
    changes = {c["name"]: c for c in json.loads(plan.stdout)["changes"]}
    assert changes["transactions"]["action"] == "update"
    assert changes["train"]["action"] in ("delete-then-create", "create-then-delete")
    assert changes["train"]["replace_paths"] == ["dataset"]
    assert any("transactions" in r and "uri" in r for r in changes["train"]["reasons"]), \
        changes["train"]["reasons"]
    assert changes["fraud_model"]["action"] == "update"
    assert changes["fraud_endpoint"]["action"] == "update"

    with Traffic(url_before) as traffic:
        mlform_ok(run_mlform, APPLY, fraud_stack_dir, timeout=300)
        time.sleep(0.3)  # requests right after the rollout land on the new version alone
    assert traffic.failures == [], traffic.outcomes
    assert traffic.outcomes["200"] > 20

    assert output(run_mlform, fraud_stack_dir, "url") == url_before
    assert served_model(url_before) == "local://models/fraud_model/2"
    shown = mlform_ok(run_mlform, ["show", "fraud_model", "--json"], fraud_stack_dir)
    assert [v["version"] for v in json.loads(shown.stdout)["outputs"]["versions"]] == [1, 2]


def test_a_killed_server_is_reported_as_drift_and_healed_by_apply(fraud_stack_dir,
                                                                   run_mlform):
    record = server_record(fraud_stack_dir)
    os.kill(record["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while servers_of(fraud_stack_dir, "fraud_endpoint") and time.monotonic() < deadline:
        time.sleep(0.05)

    drift = run_mlform(["drift", "--no-color"], fraud_stack_dir)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "fraud_endpoint" in drift.stdout
    assert "not running" in drift.stdout

    mlform_ok(run_mlform, APPLY, fraud_stack_dir, timeout=300)
    url = output(run_mlform, fraud_stack_dir, "url")
    assert url.endswith(f":{record['port']}")  # a restarted endpoint keeps its address
    assert served_model(url) == "local://models/fraud_model/2"
    assert len(servers_of(fraud_stack_dir, "fraud_endpoint")) == 1
    again = run_mlform(["plan", "--detailed-exitcode", "--no-color"], fraud_stack_dir)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_failing_gate_registers_nothing_and_leaves_the_endpoint_alone(fraud_stack_dir,
                                                                         run_mlform):
    url = output(run_mlform, fraud_stack_dir, "url")
    serving = served_model(url)
    write_fraud_data(fraud_stack_dir, seed=3)

    failed = run_mlform(APPLY + ["--var", "min_auc=0.999"], fraud_stack_dir, timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    measured = re.search(r"gate 'auc >= 0\.999' failed: measured (0\.\d+)", failed.stderr)
    assert measured, failed.stderr
    assert float(measured[1]) < 0.999
    assert "fraud_endpoint: skipped" in failed.stderr

    assert served_model(url) == serving
    shown = mlform_ok(run_mlform, ["show", "fraud_model", "--json"], fraud_stack_dir)
    assert len(json.loads(shown.stdout)["outputs"]["versions"]) == 2
    incidents = mlform_ok(run_mlform, ["incidents", "list"], fraud_stack_dir).stdout
    assert re.search(r"open\s+gate_failed\s+.*fraud_model", incidents), incidents


def test_a_breached_rollback_bound_sends_traffic_back(fraud_stack_dir, run_mlform):
    url = output(run_mlform, fraud_stack_dir, "url")
    serving = served_model(url)
    spec = fraud_stack_dir / "mlform.yaml"
    spec.write_text(spec.read_text().replace(
        "    rollout: {strategy: canary, steps: [10, 50, 100], wait: 200ms}\n",
        "    rollout: {strategy: canary, steps: [10, 50, 100], wait: 200ms}\n"
        "    rollback: {max_p99_latency_ms: 0.001, min_requests: 1}\n"))

    with Traffic(url) as traffic:
        failed = run_mlform(APPLY, fraud_stack_dir, timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"rolled back at canary step \d+%: p99 latency [\d.]+ ms > 0\.001 ms",
                     failed.stderr), failed.stderr
    assert traffic.failures == [], traffic.outcomes

    assert served_model(url) == serving
    incidents = mlform_ok(run_mlform, ["incidents", "list"], fraud_stack_dir).stdout
    assert re.search(r"open\s+rollback\s+.*fraud_endpoint", incidents), incidents
    # the model registered this time: the previous test's gate_failed incident is over
    assert re.search(r"incident inc-\d+ resolved: model 'fraud_model' passed its gates and "
                     r"was registered \(\w+\), in 'apply'", failed.stderr), failed.stderr
    assert "gate_failed" not in incidents, incidents


def test_destroy_stops_the_server_and_closes_the_port(fraud_stack_dir, run_mlform):
    port = server_record(fraud_stack_dir)["port"]
    assert port_open(port)

    destroyed = mlform_ok(run_mlform, ["destroy", "--auto-approve", "--no-color"],
                          fraud_stack_dir)

    assert_no_processes(fraud_stack_dir)
    # what the rolled-back endpoint's incident was about is gone
    assert re.search(r"incident inc-\d+ resolved: endpoint 'fraud_endpoint' was destroyed, "
                     r"in 'destroy'", destroyed.stderr), destroyed.stderr
    assert "No unresolved incidents." in mlform_ok(run_mlform, ["incidents", "list"],
                                                   fraud_stack_dir).stdout
    assert not port_open(port)
    assert not (fraud_stack_dir / ".mlform/local/endpoints/fraud_endpoint/server.json").exists()
