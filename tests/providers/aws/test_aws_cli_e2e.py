"""The installed `mlform` command with the aws provider and the S3 backend on moto's
server: apply and an empty plan, drift found and repaired, new data rolled out by
canary, an apply killed during training, destroy, and the S3 lock between two applies.

moto runs in this process, so a test steers the emulated SageMaker (`SCRIPT`) while
the command runs in another.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
from aws_stack import CSV, write_data
from conftest import BUCKET, REGION, ROLE
from moto_extensions import SCRIPT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STACK = """\
version: 1
stack: fraud
backend: {{type: s3, bucket: {bucket}, key: {key}, region: {region},
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
STATE_KEY = "fraud/state.json"
ENDPOINT = "fraud-fraud-endpoint"
APPLY = ["apply", "--auto-approve", "--no-color"]
TRAINING_LINE = re.compile(r"^train: training job (fraud-train-\w+): InProgress")
RESOURCES = ["fraud_endpoint", "fraud_model", "train", "transactions"]


@pytest.fixture
def stack(aws, tmp_path) -> Path:
    """The contract's example stack on SageMaker, its state in S3; not applied yet."""
    (tmp_path / "mlform.yaml").write_text(STACK.format(
        bucket=BUCKET, key=STATE_KEY, region=REGION, role=ROLE, url=aws))
    write_data(tmp_path)
    SCRIPT.training["fraud-train-"] = {"metrics": {"auc": 0.93}}
    return tmp_path


@pytest.fixture
def applied(stack, run_mlform) -> Path:
    succeed(run_mlform, APPLY, stack)
    return stack


def succeed(run_mlform, args: list[str], stack: Path) -> subprocess.CompletedProcess:
    done = run_mlform(args, stack)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def shown(run_mlform, stack: Path, name: str) -> dict:
    return json.loads(succeed(run_mlform, ["show", name, "--json"], stack).stdout)


def outputs_of(run_mlform, stack: Path, name: str) -> dict:
    return shown(run_mlform, stack, name)["outputs"]


def plan_is_empty(run_mlform, stack: Path) -> None:
    plan = run_mlform(["plan", "--detailed-exitcode", "--no-color"], stack)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def hold_training() -> None:
    """Training jobs started from now on stay InProgress until `release_training`."""
    SCRIPT.settle_after = 10**9


def release_training(job: str, after: int = 0) -> None:
    """`job` completes after `after` more reads of its status."""
    SCRIPT.settle_after = 2
    SCRIPT.pending[("training", job)] = after


def spawn_until_training(spawn_mlform, stack: Path) -> tuple[subprocess.Popen, str]:
    """An apply started in the background, read until its training job shows
    InProgress; (the process, the job's name)."""
    proc = spawn_mlform(APPLY, stack)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if found := TRAINING_LINE.match(line):
            return proc, found.group(1)
    raise AssertionError("the apply ended before its training job ran:\n"
                         + "".join(seen) + proc.stderr.read())


def stack_leftovers(client) -> list[str]:
    """Everything in the emulated account still tagged `mlform:stack: fraud`."""
    def owned(tags: list[dict]) -> bool:
        return {"Key": "mlform:stack", "Value": "fraud"} in tags

    sm, s3, cw = client("sagemaker"), client("s3"), client("cloudwatch")
    found = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
             if owned(s3.get_object_tagging(Bucket=BUCKET, Key=o["Key"])["TagSet"])]
    for listing, key, name, arn in [
            ("list_endpoints", "Endpoints", "EndpointName", "EndpointArn"),
            ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName",
             "EndpointConfigArn"),
            ("list_models", "Models", "ModelName", "ModelArn"),
            ("list_model_package_groups", "ModelPackageGroupSummaryList",
             "ModelPackageGroupName", "ModelPackageGroupArn"),
            ("list_training_jobs", "TrainingJobSummaries", "TrainingJobName",
             "TrainingJobArn")]:
        found += [item[name] for item in getattr(sm, listing)()[key]
                  if owned(sm.list_tags(ResourceArn=item[arn])["Tags"])]
    found += [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]
              if owned(cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"])]
    return found


def test_apply_records_state_in_s3_and_a_second_plan_is_empty(applied, run_mlform, client):
    state = json.loads(client("s3").get_object(Bucket=BUCKET, Key=STATE_KEY)["Body"].read())
    assert sorted(state["resources"]) == RESOURCES
    assert state["resources"]["fraud_endpoint"]["id"] == ENDPOINT
    plan_is_empty(run_mlform, applied)


def change_weight(sm, run_mlform, stack) -> None:
    sm.update_endpoint_weights_and_capacities(
        EndpointName=ENDPOINT,
        DesiredWeightsAndCapacities=[{"VariantName": "champion", "DesiredWeight": 30.0}])


def delete_model(sm, run_mlform, stack) -> None:
    # the SageMaker model is the provider's private data, shown apart from the outputs
    sm.delete_model(ModelName=shown(run_mlform, stack, "fraud_model")["private"]["sagemaker_model"])


def weight_is_restored(sm, run_mlform, stack) -> None:
    live = sm.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    assert [(v["VariantName"], v["CurrentWeight"]) for v in live] == [("champion", 100.0)]


def model_is_restored(sm, run_mlform, stack) -> None:
    model = shown(run_mlform, stack, "fraud_model")
    # the registered version is adopted, not registered again
    assert model["outputs"]["version"] == 1
    assert sm.describe_model(ModelName=model["private"]["sagemaker_model"])["ModelName"]


@pytest.mark.parametrize(("change", "reported", "restored"), [
    (change_weight, ["endpoint.fraud_endpoint: changed outside mlform",
                     "variants.champion.weight: (default) -> 30"], weight_is_restored),
    (delete_model, ["model.fraud_model: deleted outside mlform",
                    "SageMaker model fraud-fraud-model-"], model_is_restored),
], ids=["endpoint-weights-changed", "sagemaker-model-deleted"])
def test_drift_is_reported_then_apply_restores_the_spec(applied, run_mlform, client,
                                                        change, reported, restored):
    sm = client("sagemaker")
    succeed(run_mlform, ["drift", "--no-color"], applied)
    change(sm, run_mlform, applied)

    drift = run_mlform(["drift", "--no-color"], applied)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    for text in reported:
        assert text in drift.stdout
    assert "orphan" not in drift.stdout

    succeed(run_mlform, APPLY, applied)
    restored(sm, run_mlform, applied)
    after = run_mlform(["drift", "--no-color"], applied)
    assert after.returncode == 0, after.stdout + after.stderr


def test_new_data_retrains_and_rolls_the_endpoint_out_by_canary(applied, run_mlform,
                                                                 client):
    old = outputs_of(run_mlform, applied, "transactions")["version"]
    old_config = shown(run_mlform, applied, "fraud_endpoint")["private"]["config_name"]
    write_data(applied, CSV + "1.5,33,f,1\n")

    plan = json.loads(succeed(run_mlform, ["plan", "--format", "json"], applied).stdout)
    changes = {c["name"]: c for c in plan["changes"]}
    new = changes["transactions"]["planned_outputs"]["version"]
    assert changes["transactions"]["action"] == "update"
    assert changes["transactions"]["reasons"] == [
        f"source content changed: version {old} -> {new}"]
    train = changes["train"]
    assert train["action"] == "delete-then-create"
    assert train["replace_paths"] == ["dataset"]
    assert train["reasons"] == [f"dataset transactions changed: uri {old}/data.csv -> "
                                f"{new}/data.csv, so train must re-run"]
    assert [(a["path"], a["reason"]) for a in train["attributes"]] == [
        ("dataset", "new training data means a new run")]
    assert changes["fraud_endpoint"]["action"] == "update"
    assert [a["path"] for a in changes["fraud_endpoint"]["attributes"]] == \
        ["variants.champion.model"]

    succeed(run_mlform, APPLY, applied)
    assert SCRIPT.deployment_configs[ENDPOINT] == [{
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY", "WaitIntervalInSeconds": 5,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
            "TerminationWaitInSeconds": 5},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"{ENDPOINT}-champion-error-rate"}]},
    }]
    sm = client("sagemaker")
    live = sm.describe_endpoint(EndpointName=ENDPOINT)
    new_config = shown(run_mlform, applied, "fraud_endpoint")["private"]["config_name"]
    assert (live["EndpointStatus"], live["EndpointConfigName"]) == ("InService", new_config)
    assert new_config != old_config
    configs = sm.list_endpoint_configs()["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in configs] == [new_config]
    plan_is_empty(run_mlform, applied)


def test_an_apply_killed_during_training_is_adopted_by_the_next(stack, run_mlform,
                                                                 spawn_mlform, client):
    hold_training()
    killed, job = spawn_until_training(spawn_mlform, stack)
    killed.kill()
    assert killed.wait(timeout=30) == -9

    # A remote lock cannot tell a dead holder from a live one elsewhere: as with
    # Terraform, the next apply names it and the user releases it.
    refused = run_mlform(APPLY, stack)
    assert refused.returncode == 1
    assert f"(pid {killed.pid}) running 'apply'" in refused.stderr
    lock_id = json.loads(client("s3").get_object(
        Bucket=BUCKET, Key=STATE_KEY + ".lock")["Body"].read())["id"]
    assert f"mlform state unlock {lock_id}" in refused.stderr
    succeed(run_mlform, ["state", "unlock", lock_id], stack)

    release_training(job, after=3)
    again = succeed(run_mlform, APPLY, stack)
    assert f"train: training job {job} exists (InProgress): adopting it" in again.stdout
    jobs = client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs] == [job]
    assert outputs_of(run_mlform, stack, "train")["run_id"] == job
    plan_is_empty(run_mlform, stack)


def test_destroy_leaves_nothing_tagged_for_the_stack(applied, run_mlform, client,
                                                     make_provider):
    assert stack_leftovers(client)
    succeed(run_mlform, ["destroy", "--auto-approve", "--no-color"], applied)
    assert stack_leftovers(client) == []
    assert make_provider().list_owned() == []
    assert succeed(run_mlform, ["state", "list"], applied).stdout == ""


def test_a_second_apply_is_refused_by_the_s3_lock_naming_the_holder(stack, run_mlform,
                                                                    spawn_mlform, client):
    hold_training()
    first, job = spawn_until_training(spawn_mlform, stack)

    second = run_mlform(APPLY, stack)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "error: the state is locked:" in second.stderr
    assert f"held by {getpass.getuser()}@{socket.gethostname()} (pid {first.pid}) " \
           "running 'apply'" in second.stderr
    assert "Traceback" not in second.stderr

    release_training(job)
    assert first.wait(timeout=60) == 0, first.stdout.read() + first.stderr.read()
    state = json.loads(client("s3").get_object(Bucket=BUCKET, Key=STATE_KEY)["Body"].read())
    assert sorted(state["resources"]) == RESOURCES
    listed = succeed(run_mlform, ["state", "list"], stack).stdout.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [
        ["fraud_endpoint", "endpoint"], ["fraud_model", "model"],
        ["train", "training_job"], ["transactions", "dataset"]]
