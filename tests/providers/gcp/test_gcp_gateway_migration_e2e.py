"""A live migration from aws to gcp through the installed `mlform` command (issue 13: "the
same from aws to it"): the contract's example stack on aws (moto; trained on `local` and
moved there, since moto's SageMaker runs no training) behind a local gateway, a client
sending requests through the gateway the whole time, then the `provider:` lines of the
dataset, training job, model and endpoint changed to gcp (the GCS emulator and the Vertex
AI fake). The dataset, job and model move; the endpoint is replaced on Vertex AI, which
the gateway reaches through the gcp provider's `invoke`; the gateway checks parity and
steps the traffic over before the SageMaker endpoint is deleted. No client request fails,
no Vertex AI custom job is created, the predictions through the gateway are the same
before and after, and nothing of the stack is left on aws.

Parity reads no held-out rows here: the run's rows live in S3 before and in GCS after,
which a local gateway does not read (`mlform.ml.gateway.parity.held_out_rows` reads files
on this machine), so both endpoints are compared on the requests the gateway logged from
the client, which cycles through several rows.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter

import httpx
import pytest
from gcp_stack import labelled
from test_gcp_moves_e2e import aws, aws_conftest, client, moto_url, ok, state  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STACK = """\
version: 1
stack: fraud-gw-gcp
providers:
  local: {{}}
  sagemaker: {{type: aws, region: {region}, role_arn: "{role}", bucket: {s3},
              endpoint_url: "{aws}", poll_interval: 0.01}}
  vertex: {{type: gcp, project: {project}, region: {gregion}, bucket: {gcs_bucket},
           api_endpoint: "{vertex}", storage_endpoint: "{gcs}", poll_interval: 0.2}}
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
"""
SERVING = """\
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
ROWS = [[250.0, 2, 0.95, 30, 12], [12.0, 14, 0.1, 45, 3], [990.0, 1, 0.99, 22, 2],
        [40.0, 9, 0.4, 61, 7]]


class Traffic:
    """Prediction requests through the gateway, back to back on a thread, cycling
    through ROWS, each answer's status counted."""

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
        rows = itertools.cycle(ROWS)
        with httpx.Client(timeout=30.0) as http:
            while not self._stop.wait(0.01):
                try:
                    r = http.post(f"{self.url}/predict", json={"instances": [next(rows)]})
                    self.outcomes[str(r.status_code)] += 1
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.failures.append(f"{type(e).__name__}: {e}")


def predictions(url: str) -> dict:
    r = httpx.post(f"{url}/predict", json={"instances": ROWS}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_stack_moves_from_aws_to_gcp_behind_its_gateway_without_a_failed_request(
        aws, gcs, vertex, gcs_bucket, tmp_path, run_mlform, client):  # noqa: F811
    from mlform.engine.scaffold import write_sample_data

    def write(provider: str, serving: bool = True) -> None:
        text = STACK + (SERVING if serving else "")
        (tmp_path / "mlform.yaml").write_text(text.format(
            region=aws_conftest.REGION, role=aws_conftest.ROLE, s3=aws_conftest.BUCKET,
            aws=aws, project=vertex.project, gregion=vertex.region, gcs_bucket=gcs_bucket,
            vertex=vertex.url, gcs=gcs.url, provider=provider))

    write_sample_data(tmp_path / "data" / "transactions.csv", rows=300, seed=3)
    write("local", serving=False)  # trained here: moto's SageMaker trains nothing
    ok(run_mlform, APPLY, tmp_path)
    write("sagemaker")  # moved to aws, served by SageMaker behind a new local gateway
    ok(run_mlform, APPLY, tmp_path)
    url = ok(run_mlform, ["output", "url", "--raw"], tmp_path).stdout.strip()
    before = predictions(url)
    assert before["endpoint"] == "fraud_endpoint" and len(before["predictions"]) == len(ROWS)

    write("vertex")
    plan = ok(run_mlform, ["plan", "--no-color"], tmp_path).stdout
    for moved in ("dataset.transactions", "training_job.train", "model.fraud_model"):
        assert f"-> {moved} will be moved from 'sagemaker' to 'vertex'" in plan, plan
    assert "cutover to endpoint fraud_endpoint (provider 'vertex'): parity first" in plan
    migration = plan[plan.index("Migration:"):plan.index("Plan:")]
    parts = ["1. Copied:", "model.fraud_model: 'sagemaker' -> 'vertex'", "2. Created:",
             "endpoint.fraud_endpoint on 'vertex'", "3. Parity:", "4. Cutover:",
             "traffic steps [50, 100]% on the new endpoint", "5. Destroyed:",
             "endpoint.fraud_endpoint on 'sagemaker': after gateway.front's last cutover "
             "step and its soak (0s)"]
    at = [migration.find(part) for part in parts]
    assert -1 not in at and at == sorted(at), migration

    with Traffic(url) as traffic:
        applied = ok(run_mlform, APPLY, tmp_path).stdout
    assert re.search(r"^front: parity: 40 rows \(0 held-out rows, 40 logged requests\): "
                     r"label agreement 1\.000$", applied, re.M), applied
    assert "front: cutover step 100%: 100% of requests on the new endpoint" in applied
    assert "no Vertex AI custom job" in applied
    assert traffic.failures == [] and traffic.outcomes["200"] > 0, traffic.failures[:5]

    # the same address, the same answers, now from Vertex AI
    assert ok(run_mlform, ["output", "url", "--raw"], tmp_path).stdout.strip() == url
    assert predictions(url) == before
    on_gcp = state(tmp_path)
    assert {on_gcp[n]["provider"] for n in ("transactions", "train", "fraud_model",
                                            "fraud_endpoint")} == {"vertex"}
    health = httpx.get(f"{url}/health", timeout=10).json()
    assert list(health["weights"]) == [f"fraud_endpoint@{on_gcp['fraud_endpoint']['outputs']['url']}"]
    on_vertex = labelled(gcs, vertex, gcs_bucket, "fraud-gw-gcp")
    assert [n for n in on_vertex if "/customJobs/" in n] == []
    assert len([n for n in on_vertex if "/endpoints/" in n]) == 1

    # nothing of the stack is left on aws
    sm = client("sagemaker")
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_models()["Models"] == []
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    # what SageMaker's data capture wrote stays, as on aws: the endpoint's record of its
    # traffic, not something mlform uploaded
    s3 = client("s3").list_objects_v2(Bucket=aws_conftest.BUCKET).get("Contents", [])
    assert [o["Key"] for o in s3 if "/capture/" not in o["Key"]] == []
    assert any("/capture/" in o["Key"] for o in s3)
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []

    ok(run_mlform, ["destroy", "--auto-approve", "--no-color"], tmp_path)
    assert labelled(gcs, vertex, gcs_bucket, "fraud-gw-gcp") == []
