"""`mlform apply` and `mlform drift` through the installed command, with the aws provider
and the S3 backend on moto's server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_stack import write_data
from conftest import BUCKET, REGION, ROLE
from moto_extensions import SCRIPT

STACK = """\
version: 1
stack: fraud
backend: {{type: s3, bucket: {bucket}, key: fraud/state.json, region: {region},
          endpoint_url: "{url}"}}
providers:
  sagemaker: {{type: aws, region: {region}, role_arn: "{role}", bucket: {bucket},
              endpoint_url: "{url}", poll_interval: 0.01}}
resources:
  transactions:
    type: dataset
    source: data/transactions.csv
  train:
    type: training_job
    dataset: ${{transactions.uri}}
    algorithm: mlp_classifier
    target: is_fraud
    hyperparameters: {{epochs: 5, lr: 0.01}}
  fraud_model:
    type: model
    artifact: ${{train.artifact}}
    gates:
      - metric: auc
        min: 0.85
  fraud_endpoint:
    type: endpoint
    variants:
      champion:
        model: ${{fraud_model.uri}}
        weight: 100
    rollout: {{strategy: canary, steps: [10, 50, 100]}}
outputs:
  url: {{value: "${{fraud_endpoint.url}}"}}
"""


def mlform(stack: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlform.engine.cli.main", *args, str(stack)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1"})


@pytest.mark.slow
@pytest.mark.e2e
def test_apply_then_drift_finds_only_the_out_of_band_weight_change(aws, client, tmp_path):
    (tmp_path / "mlform.yaml").write_text(STACK.format(bucket=BUCKET, region=REGION,
                                                       role=ROLE, url=aws))
    write_data(tmp_path)
    SCRIPT.training["fraud-train-"] = {"metrics": {"auc": 0.93}}
    applied = mlform(tmp_path, "apply", "--auto-approve", "--no-color")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "/endpoints/fraud-fraud-endpoint/invocations" in applied.stdout
    state = client("s3").get_object(Bucket=BUCKET, Key="fraud/state.json")["Body"].read()
    assert b"fraud-fraud-endpoint" in state
    quiet = mlform(tmp_path, "drift", "--no-color")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName="fraud-fraud-endpoint",
        DesiredWeightsAndCapacities=[{"VariantName": "champion", "DesiredWeight": 30.0}])
    drift = mlform(tmp_path, "drift", "--no-color")
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "endpoint.fraud_endpoint: changed outside mlform" in drift.stdout
    assert "variants.champion.weight: null -> 30" in drift.stdout
    assert "orphan" not in drift.stdout
