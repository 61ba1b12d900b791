"""A live migration through the installed `mlform` command (issue 13): the contract's
example stack on `local` behind a local gateway, a client sending requests through the
gateway the whole time, then the `provider:` lines of the dataset, training job, model
and endpoint changed to aws (moto, whose InvokeEndpoint runs the moved model). The
dataset, job and model move; the endpoint is replaced on SageMaker; the gateway checks
parity and steps the traffic over before the local endpoint is deleted. No client
request fails, the predictions through the gateway are the same before and after, and
no local endpoint server is left.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import BUCKET, REGION, ROLE

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STACK = """\
version: 1
stack: fraud
providers:
  local: {{}}
  sagemaker: {{type: aws, region: {region}, role_arn: "{role}", bucket: {bucket},
              endpoint_url: "{url}", poll_interval: 0.01}}
resources:
  transactions:
    type: dataset
    provider: {provider}
    source: data/transactions.csv
  train:
    type: training_job
    provider: {provider}
    dataset: ${{transactions.uri}}
    algorithm: logistic_regression
    target: is_fraud
    hyperparameters: {{epochs: 3, lr: 0.05}}
  fraud_model:
    type: model
    provider: {provider}
    artifact: ${{train.artifact}}
    gates:
      - metric: auc
        min: 0.5
  fraud_endpoint:
    type: endpoint
    provider: {provider}
    variants:
      champion: {{model: "${{fraud_model.uri}}"}}
    rollout: {{strategy: canary, steps: [50, 100], wait: 1s}}
    rollback: {{min_requests: 3, evidence_timeout: 60s}}
  front:
    type: gateway
    provider: local
    routes:
      - endpoint: "${{fraud_endpoint.url}}"
    parity: {{holdout: "${{train.artifact}}", sample: 40}}
outputs:
  url: {{value: "${{front.url}}"}}
"""
APPLY = ["apply", "--auto-approve", "--no-color"]
ROWS = [[250.0, 2, 0.95, 30, 12], [12.0, 14, 0.1, 45, 3], [990.0, 1, 0.99, 22, 2]]


def write(stack: Path, url: str, provider: str) -> None:
    (stack / "mlform.yaml").write_text(STACK.format(region=REGION, role=ROLE, bucket=BUCKET,
                                                    url=url, provider=provider))


def ok(run_mlform, args: list, cwd: Path, timeout: float = 400):
    proc = run_mlform(args, cwd, timeout=timeout)
    assert proc.returncode == 0, f"mlform {args} exited {proc.returncode}\n{proc.stdout}\n" \
                                 f"{proc.stderr}"
    return proc


class Traffic:
    """Prediction requests through the gateway, back to back on a thread, each answer's
    status counted (the local e2e tests' client, which this folder cannot import)."""

    def __init__(self, url: str):
        self.url, self.outcomes, self.failures = url, Counter[str](), []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=30.0) as http:
            while not self._stop.wait(0.01):
                try:
                    r = http.post(f"{self.url}/predict", json={"instances": ROWS[:1]})
                    self.outcomes[str(r.status_code)] += 1
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.failures.append(f"{type(e).__name__}: {e}")


def processes_of(stack: Path) -> list[str]:
    """Command lines of live processes that name the stack's directory (servers, proxies)."""
    needle = str(stack.resolve()) + os.sep
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(needle in a for a in cmdline):
            found.append(" ".join(cmdline))
    return found


def predictions(url: str) -> list:
    r = httpx.post(f"{url}/predict", json={"instances": ROWS}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def test_a_stack_moves_to_aws_behind_its_gateway_without_a_failed_request(
        aws, tmp_path, run_mlform, client):
    from mlform.engine.scaffold import write_sample_data

    write_sample_data(tmp_path / "data" / "transactions.csv", rows=400, seed=3)
    write(tmp_path, aws, "local")
    ok(run_mlform, APPLY, tmp_path)
    url = ok(run_mlform, ["output", "url", "--raw"], tmp_path).stdout.strip()
    before = predictions(url)

    write(tmp_path, aws, "sagemaker")
    plan = ok(run_mlform, ["plan", "--no-color"], tmp_path).stdout
    assert "-> model.fraud_model will be moved from 'local' to 'sagemaker'" in plan
    assert "cutover to endpoint fraud_endpoint (provider 'sagemaker'): parity first" in plan
    with Traffic(url) as traffic:
        applied = ok(run_mlform, APPLY, tmp_path).stdout
    assert "front: parity: 40 rows (20 held-out rows, 20 logged requests): label " \
           "agreement 1.000" in applied
    assert "front: cutover step 100%" in applied
    assert traffic.failures == [] and traffic.outcomes["200"] > 0
    assert ok(run_mlform, ["output", "url", "--raw"], tmp_path).stdout.strip() == url
    answer = httpx.post(f"{url}/predict", json={"instances": ROWS}, timeout=30).json()
    assert answer == {"predictions": before, "endpoint": "fraud_endpoint"}
    health = httpx.get(f"{url}/health", timeout=10).json()
    assert [k.split("@")[1] for k in health["weights"]] == [
        f"https://runtime.sagemaker.{REGION}.amazonaws.com/endpoints/"
        f"{json.loads((tmp_path / '.mlform' / 'state.json').read_text())['resources']['fraud_endpoint']['outputs']['name']}"
        "/invocations"]
    assert [p for p in processes_of(tmp_path) if "serving.server" in p] == []
    assert client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []

    ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], tmp_path)
    assert processes_of(tmp_path) == []
