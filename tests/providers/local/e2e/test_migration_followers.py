"""A migration carries a stack's monitor and retraining policy along with its endpoint:
every `provider:` line changes from one local provider to another (separate data
directories, as two platforms would be) behind a gateway; after the apply the monitor
and the policy live on the new provider, watch the new endpoint, and a `watch` pass
evaluates the traffic the new endpoint answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Traffic, destroy_and_check, mlform_ok, output, write_fraud_data

pytestmark = pytest.mark.e2e

STACK = """\
version: 1
stack: followers
providers:
  old: {{type: local}}
  new: {{type: local}}
resources:
  transactions:
    type: dataset
    provider: {p}
    source: data/transactions.csv
  train:
    type: training_job
    provider: {p}
    dataset: ${{transactions.uri}}
    algorithm: logistic_regression
    target: is_fraud
  fraud_model:
    type: model
    provider: {p}
    artifact: ${{train.artifact}}
  fraud_endpoint:
    type: endpoint
    provider: {p}
    variants:
      champion: {{model: "${{fraud_model.uri}}"}}
    rollout: {{strategy: canary, steps: [50, 100], wait: 200ms}}
    rollback: {{min_requests: 0}}
  traffic_monitor:
    type: monitor
    provider: {p}
    endpoint: ${{fraud_endpoint.id}}
    reference: ${{transactions.uri}}
    window_rows: 200
    min_rows: 50
  retrain_on_drift:
    type: retraining_policy
    provider: {p}
    training_job: train
    model: fraud_model
    endpoint: fraud_endpoint
    triggers:
      - monitor: traffic_monitor
        on: drift
    action: retrain_and_deploy
    cooldown: 1h
  front:
    type: gateway
    provider: old
    routes:
      - endpoint: "${{fraud_endpoint.url}}"
    parity: {{sample: 20}}
outputs:
  url: {{value: "${{front.url}}"}}
"""


def _state(stack: Path) -> dict:
    return json.loads((stack / ".mlform" / "state.json").read_text())["resources"]


def test_the_monitor_and_the_policy_follow_the_endpoint(tmp_path, run_mlform):
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "mlform.yaml").write_text(STACK.format(p="old"))
    write_fraud_data(stack, seed=1, rows=600)
    try:
        mlform_ok(run_mlform, ["apply", "--auto-approve"], stack, timeout=300)
        url = output(run_mlform, stack, "url")
        before = _state(stack)
        (stack / "mlform.yaml").write_text(STACK.format(p="new"))
        with Traffic(url) as traffic:
            mlform_ok(run_mlform, ["apply", "--auto-approve", "--no-color"], stack,
                      timeout=300)
            assert traffic.failures == [], traffic.outcomes
        after = _state(stack)
        endpoint = after["fraud_endpoint"]
        assert endpoint["provider"] == "new"
        assert endpoint["outputs"]["url"] != before["fraud_endpoint"]["outputs"]["url"]
        monitor, policy = after["traffic_monitor"], after["retrain_on_drift"]
        assert (monitor["provider"], policy["provider"]) == ("new", "new")
        assert monitor["inputs"]["endpoint"] == endpoint["id"]  # watches the new endpoint
        assert policy["inputs"]["endpoint"] == "fraud_endpoint"
        assert not [n for n in after if "~" in n]  # nothing of the old side is left
        assert not (stack / ".mlform" / "old" / "endpoints" / "fraud_endpoint").exists()

        # the requests the gateway sent during and after the cutover are the new
        # endpoint's traffic, which the monitor (now on the new provider) evaluates
        with Traffic(url):
            pass
        watched = mlform_ok(run_mlform, ["watch", "--once", "--no-color"], stack, timeout=300)
        assert "traffic_monitor: " in watched.stdout, watched.stdout
        last = _state(stack)["traffic_monitor"]["outputs"].get("last_evaluation") or \
            _state(stack)["traffic_monitor"]["private"].get("last_evaluation")
        assert last and last["verdict"] in ("no_drift", "drift"), last  # it had rows to judge
        assert (stack / ".mlform" / "new" / "endpoints" / "fraud_endpoint").is_dir()
        assert output(run_mlform, stack, "url") == url  # clients kept their address
    finally:
        destroy_and_check(run_mlform, stack)
