"""A gateway in front of a local endpoint, moved to another endpoint through `mlform`
while a client sends requests through it the whole time (issue 13 items 2-4):

- a new endpoint that does not answer as the old one does (here: it refuses the
  parity check's batches) fails parity: no traffic moves, the apply fails and an
  incident says why (label disagreement: tests/ml/gateway/test_parity.py);
- one that does takes the traffic step by step; an apply killed (`kill -9`) during the
  cutover leaves the gateway serving, and the next apply finishes it and deletes the
  old endpoint;
- no client request fails, predictions through the gateway are the same before and
  after, and destroy leaves no process behind.

The tests share one stack and run in file order.
"""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from .conftest import (
    INSTANCE,
    Traffic,
    destroy_and_check,
    mlform_ok,
    output,
    servers_of,
    write_fraud_data,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APPLY = ["apply", "--auto-approve", "--no-color"]

STACK = """
    version: 1
    stack: gateway-cutover
    providers:
      local: {}
    resources:
      transactions:
        type: dataset
        source: data/transactions.csv
      train:
        type: training_job
        dataset: ${transactions.uri}
        algorithm: mlp_classifier
        target: is_fraud
        hyperparameters: {epochs: 3, lr: 0.01}
      fraud_model:
        type: model
        artifact: ${train.artifact}
%(endpoints)s
      front:
        type: gateway
        routes:
          - endpoint: "${%(backend)s.url}"
        parity: {holdout: "${train.artifact}", sample: 60}
    outputs:
      url: {value: "${front.url}"}
    """

ENDPOINT = """
      %(name)s:
        type: endpoint
        variants:
          champion: {model: "${fraud_model.uri}"}
        rollout: {strategy: canary, steps: [50, 100], wait: 500ms}
        rollback: {min_requests: 3, evidence_timeout: 60s}
        limits: {max_body_bytes: %(body)s}
"""

ROWS = [INSTANCE, [12.0, 14, 0.1, 45, 3], [990.0, 1, 0.99, 22, 2], [40.0, 6, 0.5, 60, 9]]


def write(stack_dir, backend: str, endpoints: dict[str, str]) -> None:
    """`endpoints`: name -> its largest request body (`8MiB`; `512B` refuses the parity
    check's batches while a client's single rows still pass)."""
    text = "".join(ENDPOINT % {"name": n, "body": b} for n, b in endpoints.items())
    (stack_dir / "mlform.yaml").write_text(
        (STACK % {"endpoints": text.rstrip("\n"), "backend": backend}).replace("\n    ", "\n")
        .lstrip("\n"))


def predictions(url: str) -> list:
    r = httpx.post(f"{url}/predict", json={"instances": ROWS}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def weights(url: str) -> dict[str, float]:
    return {k.split("@")[0]: v
            for k, v in httpx.get(f"{url}/health", timeout=10).json()["weights"].items()}


def routes_file(stack_dir) -> dict:
    path = stack_dir / ".mlform" / "local" / "gateways" / "front" / "gateway.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory, run_mlform):
    directory = tmp_path_factory.mktemp("gateway")
    write_fraud_data(directory, seed=1, rows=500)
    write(directory, "blue", {"blue": "8MiB"})
    mlform_ok(run_mlform, APPLY, directory, timeout=400)
    yield directory
    destroy_and_check(run_mlform, directory)


@pytest.fixture(scope="module")
def before(stack_dir, run_mlform) -> dict:
    url = output(run_mlform, stack_dir, "url")
    return {"url": url, "predictions": predictions(url)}


def test_a_new_endpoint_that_does_not_answer_alike_fails_parity_and_moves_nothing(
        stack_dir, before, run_mlform):
    write(stack_dir, "green", {"blue": "8MiB", "green": "512B"})
    with Traffic(before["url"]) as traffic:
        failed = run_mlform(APPLY, stack_dir, timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "gateway 'front': parity failed, no traffic moved" in failed.stderr
    assert "breached: a side did not answer: endpoint 'green' answered 413" in failed.stderr
    assert "cutover step" not in failed.stdout
    assert traffic.failures == [] and traffic.outcomes["200"] > 0
    assert weights(before["url"]) == {"blue": 100.0}
    assert [k.split("@")[0] for k in routes_file(stack_dir)["backends"]] == ["blue"]
    assert servers_of(stack_dir, "blue"), "the old endpoint must keep serving"
    incidents = mlform_ok(run_mlform, ["incidents", "list"], stack_dir).stdout
    assert "gateway front: parity failed; no traffic moved" in incidents


def test_a_cutover_killed_midway_resumes_and_deletes_the_old_endpoint(
        stack_dir, before, run_mlform, spawn_mlform):
    write(stack_dir, "teal", {"teal": "8MiB"})
    plan = mlform_ok(run_mlform, ["plan", "--no-color"], stack_dir).stdout
    assert "cutover to endpoint teal (provider 'local'): parity first (min_label_agreement " \
           "1, sample 60), then traffic steps [50, 100]" in plan
    with Traffic(before["url"]) as traffic:
        apply = spawn_mlform(APPLY, stack_dir)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and apply.poll() is None:
            try:
                share = routes_file(stack_dir)["weights"]
            except (FileNotFoundError, ValueError):
                share = {}
            if len([w for w in share.values() if w > 0]) == 2:
                break
            time.sleep(0.05)
        assert apply.poll() is None, "the apply ended before its cutover was seen split"
        os.kill(apply.pid, signal.SIGKILL)
        apply.wait()
        split = weights(before["url"])
        assert split["blue"] > 0 and split["teal"] > 0, split
        resumed = mlform_ok(run_mlform, APPLY, stack_dir, timeout=300)
    assert "resuming the cutover from 50% on the new endpoint" in resumed.stdout
    assert traffic.failures == [] and traffic.outcomes["200"] > 0
    assert output(run_mlform, stack_dir, "url") == before["url"]
    assert weights(before["url"]) == {"teal": 100.0}
    assert predictions(before["url"]) == before["predictions"]
    assert not servers_of(stack_dir, "blue") and not servers_of(stack_dir, "green")
    listed = mlform_ok(run_mlform, ["state", "list"], stack_dir).stdout
    assert "blue" not in listed and "green" not in listed
    incidents = mlform_ok(run_mlform, ["incidents", "list", "--status", "resolved"],
                          stack_dir).stdout
    assert "resolved" in incidents


def test_a_dead_proxy_is_restarted_on_its_port(stack_dir, before, run_mlform):
    record = json.loads((stack_dir / ".mlform" / "local" / "gateways" / "front"
                         / "server.json").read_text())
    os.kill(record["pid"], signal.SIGKILL)
    plan = run_mlform(["plan", "--no-color", "--detailed-exitcode"], stack_dir)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    mlform_ok(run_mlform, APPLY, stack_dir, timeout=120)
    assert predictions(before["url"]) == before["predictions"]
