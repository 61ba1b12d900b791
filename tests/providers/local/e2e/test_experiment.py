"""A/B experiments on a local endpoint, through the installed command and real HTTP:
sticky assignment by a request key, across a server restart; a planted accuracy
difference in the feedback decided by `mlform experiment`, written to the audit log;
and `promote_winner` rolling the winner out on the next pass.
"""

from __future__ import annotations

import json
import os
import random
import signal

import httpx
import pytest

from .conftest import (
    INSTANCE,
    destroy_and_check,
    mlform_ok,
    output,
    server_record,
    write_fraud_data,
)

pytestmark = pytest.mark.e2e

STACK = """
    version: 1
    stack: ab
    backend: {type: local}
    providers:
      local: {}
    resources:
      transactions:
        type: dataset
        source: data/transactions.csv
      train:
        type: training_job
        dataset: ${transactions.uri}
        algorithm: logistic_regression
        target: is_fraud
        hyperparameters: {epochs: 1}
      model_a:
        type: model
        artifact: ${train.artifact}
      model_b:
        type: model
        artifact: ${train.artifact}
      scorer:
        type: endpoint
        variants:
          current:
            model: ${model_a.uri}
            weight: 50
          challenger:
            model: ${model_b.uri}
            weight: 50
        rollout: {strategy: canary, steps: [50, 100], wait: 100ms}
        rollback: {min_requests: 0}
        experiment:
          name: ranker-2026-12
          key: user_id
          control: current
          baseline: 0.8
          mde: 0.1
          promote_winner: PROMOTE
    outputs:
      url: {value: "${scorer.url}"}
    """

USERS = [f"user-{i}" for i in range(300)]


@pytest.fixture(scope="module")
def ab_stack(tmp_path_factory, stack_writer, run_mlform):
    directory = stack_writer(tmp_path_factory.mktemp("ab"), STACK.replace("PROMOTE", "false"))
    write_fraud_data(directory, seed=1, rows=400)
    mlform_ok(run_mlform, ["apply", "--auto-approve"], directory, timeout=300)
    yield directory
    destroy_and_check(run_mlform, directory)


def _ask(client: httpx.Client, url: str, user: str) -> dict:
    r = client.post(f"{url}/predict", json={"instances": [INSTANCE], "user_id": user})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_key_gets_the_same_variant_across_a_restart(ab_stack, run_mlform):
    url = output(run_mlform, ab_stack, "url")
    with httpx.Client(timeout=10) as client:
        before = {u: _ask(client, url, u)["variant"] for u in USERS}
        again = {u: _ask(client, url, u)["variant"] for u in USERS}
    assert before == again
    assert 0.38 <= list(before.values()).count("challenger") / len(USERS) <= 0.62
    os.kill(server_record(ab_stack, "scorer")["pid"], signal.SIGKILL)
    mlform_ok(run_mlform, ["apply", "--auto-approve"], ab_stack, timeout=300)
    assert output(run_mlform, ab_stack, "url") == url
    with httpx.Client(timeout=10) as client:
        after = {u: _ask(client, url, u)["variant"] for u in USERS}
    assert after == before
    r = httpx.post(f"{url}/predict", json={"instances": [INSTANCE], "user_id": [1]})
    assert r.status_code == 400 and "user_id" in r.json()["error"]


def test_a_planted_difference_is_decided_audited_and_the_winner_promoted(ab_stack,
                                                                         run_mlform):
    url = output(run_mlform, ab_stack, "url")
    spec = ab_stack / "mlform.yaml"
    spec.write_text(spec.read_text().replace("promote_winner: false",
                                             "promote_winner: true"))
    mlform_ok(run_mlform, ["apply", "--auto-approve"], ab_stack, timeout=300)
    collecting = mlform_ok(run_mlform, ["experiment", "--format", "json"], ab_stack)
    assert json.loads(collecting.stdout)["scorer"]["status"] == "collecting"
    # The world's answers: the challenger's predictions are right 95% of the time, the
    # current variant's 75%.
    rng = random.Random(5)
    with httpx.Client(timeout=10) as client:
        for i in range(900):
            answer = _ask(client, url, f"visitor-{i}")
            predicted = answer["predictions"][0]
            right = rng.random() < (0.95 if answer["variant"] == "challenger" else 0.75)
            label = predicted if right else 1 - predicted
            r = client.post(f"{url}/feedback", json={"id": answer["id"], "labels": [label]})
            assert r.status_code == 202, r.text
    shown = mlform_ok(run_mlform, ["experiment", "--no-color"], ab_stack, timeout=300)
    assert "endpoint scorer: experiment ranker-2026-12: winner: challenger" in shown.stdout
    assert "challenger vs current: difference +0." in shown.stdout
    assert "scorer: promoting variant 'challenger'" in shown.stdout
    assert "scorer: promoted" in shown.stdout
    with httpx.Client(timeout=10) as client:
        assert {_ask(client, url, u)["variant"] for u in USERS[:50]} == {"challenger"}

    verdict = json.loads(mlform_ok(run_mlform, ["experiment", "--format", "json"],
                                   ab_stack).stdout)["scorer"]
    assert verdict["winner"] == "challenger"
    served = verdict["variants"]["challenger"]["serving"]  # the server's own counts
    assert served["requests"] >= 400  # the 900 visitors' share, since the restart
    assert served["errors"] == 0 and served["p99_ms"] > 0
    assert verdict["comparisons"]["challenger"]["p_value"] < 0.05
    audit = [json.loads(line) for line in
             (ab_stack / ".mlform" / "audit.jsonl").read_text().splitlines()]
    decided = [e for e in audit if e["command"] == "experiment: scorer"]
    assert len(decided) == 1 and decided[0]["result"] == "winner"  # written once
    promoted = [e for e in audit if e["command"] == "experiment: scorer promote"]
    assert len(promoted) == 1 and promoted[0]["result"] == "ok"
    # the winner stays: the plan wants nothing, and says why the weights are what they are
    settled = run_mlform(["plan", "--detailed-exitcode"], ab_stack)
    assert settled.returncode == 0, settled.stdout + settled.stderr
