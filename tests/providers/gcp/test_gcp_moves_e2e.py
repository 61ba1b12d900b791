"""Moves to gcp through the installed `mlform` command (issue 13: "the same from aws to
it"): the example stack's dataset, training job and model on aws (moto; trained on
`local` and moved there, since moto's SageMaker runs no training), then their `provider:`
lines changed to gcp (the GCS emulator and the Vertex AI fake). The plan shows moves;
apply creates no Vertex AI custom job, registers the model with the metrics and gate
results recorded on aws, leaves nothing of the moved resources on aws, and a second plan
is empty. The stack then moves on from gcp to `local`, which judges the gates again on
the copied held-out rows and finds the same results.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from gcp_stack import labelled

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

_AWS_TESTS = Path(__file__).resolve().parents[1] / "aws"
if str(_AWS_TESTS) not in sys.path:  # the aws conftest imports moto_extensions by name
    sys.path.insert(0, str(_AWS_TESTS))
if "aws_conftest" not in sys.modules:  # the conformance kit may have loaded it already
    _spec = importlib.util.spec_from_file_location("aws_conftest", _AWS_TESTS / "conftest.py")
    assert _spec is not None and _spec.loader is not None
    sys.modules["aws_conftest"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["aws_conftest"])
aws_conftest = sys.modules["aws_conftest"]
moto_url = aws_conftest.moto_url
aws = aws_conftest.aws
client = aws_conftest.client

STACK = """\
version: 1
stack: fraud-to-gcp
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
APPLY = ["apply", "--auto-approve", "--no-color"]
MOVED = ("transactions", "train", "fraud_model")


def ok(run_mlform, args: list, cwd: Path):
    proc = run_mlform(args, cwd, timeout=300)
    assert proc.returncode == 0, f"mlform {args} exited {proc.returncode}\n{proc.stdout}\n" \
                                 f"{proc.stderr}"
    return proc


def state(stack: Path) -> dict:
    return json.loads((stack / ".mlform" / "state.json").read_text())["resources"]


def test_a_stack_moves_from_aws_to_gcp_and_on_to_local(aws, gcs, vertex, gcs_bucket, tmp_path,
                                                       run_mlform, client):
    from mlform.engine.scaffold import write_sample_data

    def write(provider: str) -> None:
        (tmp_path / "mlform.yaml").write_text(STACK.format(
            region=aws_conftest.REGION, role=aws_conftest.ROLE, s3=aws_conftest.BUCKET,
            aws=aws, project=vertex.project, gregion=vertex.region, gcs_bucket=gcs_bucket,
            vertex=vertex.url, gcs=gcs.url, provider=provider))

    write_sample_data(tmp_path / "data" / "transactions.csv", rows=300, seed=3)
    write("local")
    ok(run_mlform, APPLY, tmp_path)
    write("sagemaker")
    ok(run_mlform, APPLY, tmp_path)
    on_aws = state(tmp_path)
    assert all(on_aws[n]["provider"] == "sagemaker" for n in MOVED)

    write("vertex")
    plan = ok(run_mlform, ["plan", "--no-color"], tmp_path).stdout
    assert "-> training_job.train will be moved from 'sagemaker' to 'vertex'\n" \
           "    # moves from provider 'sagemaker' to 'vertex': copied, not re-run\n" \
           "    # copies " in plan
    assert "-> dataset.transactions will be moved from 'sagemaker' to 'vertex'" in plan
    assert "-> model.fraud_model will be moved from 'sagemaker' to 'vertex'" in plan
    assert "Plan: 0 to add, 0 to change, 0 to destroy, 3 to move." in plan

    applied = ok(run_mlform, APPLY, tmp_path).stdout
    assert "Apply complete: 0 added, 0 changed, 3 destroyed, 3 moved." in applied
    assert "no Vertex AI custom job" in applied
    on_gcp = state(tmp_path)
    assert all(on_gcp[n]["provider"] == "vertex" for n in MOVED)
    assert on_gcp["train"]["outputs"]["metrics"] == on_aws["train"]["outputs"]["metrics"]
    assert on_gcp["train"]["outputs"]["run_id"] == on_aws["train"]["outputs"]["run_id"]
    assert on_gcp["fraud_model"]["outputs"]["gates"] == on_aws["fraud_model"]["outputs"]["gates"]
    assert on_gcp["transactions"]["outputs"]["version"] == \
        on_aws["transactions"]["outputs"]["version"]
    on_vertex = labelled(gcs, vertex, gcs_bucket, "fraud-to-gcp")
    assert not [n for n in on_vertex if "/customJobs/" in n]
    assert len([n for n in on_vertex if "/models/" in n]) == 1
    from google.cloud.aiplatform_v1 import ModelServiceClient

    registered = vertex.client(ModelServiceClient).get_model(
        name=on_gcp["fraud_model"]["outputs"]["uri"])
    assert registered.artifact_uri == on_gcp["train"]["outputs"]["artifact"]
    run_folder = f"training/train/{on_gcp['train']['outputs']['run_id']}/model/"
    assert {"metrics.json", "holdout.csv", "run.json"} <= {
        n.rsplit("/", 1)[-1] for n in on_vertex if run_folder in n}
    # nothing of the moved resources is left on aws
    s3 = client("s3").list_objects_v2(Bucket=aws_conftest.BUCKET).get("Contents", [])
    assert [o["Key"] for o in s3 if "/datasets/" in o["Key"] or "/training/" in o["Key"]] == []
    sm = client("sagemaker")
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    assert "No changes." in ok(run_mlform, ["plan", "--no-color"], tmp_path).stdout

    write("local")  # and on from gcp: the local registry judges the gates again
    assert "3 moved." in ok(run_mlform, APPLY, tmp_path).stdout
    on_local = state(tmp_path)
    assert all(on_local[n]["provider"] == "local" for n in MOVED)
    assert [(g["gate"], g["passed"]) for g in on_local["fraud_model"]["outputs"]["gates"]] == \
        [(g["gate"], g["passed"]) for g in on_gcp["fraud_model"]["outputs"]["gates"]]
    assert labelled(gcs, vertex, gcs_bucket, "fraud-to-gcp") == []  # nothing left on gcp
    assert "No changes." in ok(run_mlform, ["plan", "--no-color"], tmp_path).stdout
