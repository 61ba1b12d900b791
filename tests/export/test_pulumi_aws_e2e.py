"""`mlform export pulumi` on the contract's example stack applied on SageMaker (moto's
server): the generated program, run under Pulumi's mocks in build/pulumi-venv, declares
each live resource with the inputs SageMaker and S3 report and adopts it by its id.

The export runs with the main venv's `mlform` (no Pulumi there); the program runs with
Pulumi's SDKs only, set to mocks before pulumi_aws is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_stack import write_data
from moto_extensions import SCRIPT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REGION = "us-east-1"
BUCKET = "mlform-test-bucket"
ROLE = "arn:aws:iam::123456789012:role/mlform-sagemaker"

STACK = """\
version: 1
stack: fraud
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
    tags: {{team: risk}}
    gates:
      - metric: auc
        min: 0.85
  fraud_endpoint:
    type: endpoint
    variants:
      champion:
        model: ${{fraud_model.uri}}
        weight: 100
    compute: {{instances: 2}}
    rollout: {{strategy: canary, steps: [10, 50, 100]}}
"""


def ok(run_mlform, args: list, cwd: Path):
    done = run_mlform(args, cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def resource(run_mlform, stack: Path, name: str) -> dict:
    return json.loads(ok(run_mlform, ["show", name, "--json"], stack).stdout)


def test_the_program_declares_the_live_sagemaker_resources(pulumi_mocks, aws, tmp_path,
                                                           run_mlform):
    import boto3

    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "mlform.yaml").write_text(STACK.format(region=REGION, role=ROLE, bucket=BUCKET,
                                                    url=aws))
    write_data(stack)
    SCRIPT.training["fraud-train-"] = {"metrics": {"auc": 0.93}}
    ok(run_mlform, ["apply", "--auto-approve", "--no-color"], stack)

    out = tmp_path / "infra"
    done = ok(run_mlform, ["export", "pulumi", str(stack), "--out", str(out)], tmp_path)
    assert "declaring 6 resource(s)" in done.stdout, done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["Pulumi.yaml", "__main__.py",
                                                     "requirements.txt"]
    declared = pulumi_mocks(out, tmp_path)

    sm = boto3.client("sagemaker", region_name=REGION, endpoint_url=aws)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws)
    by_type: dict[str, list[dict]] = {}
    for r in declared:
        by_type.setdefault(r["type"], []).append(r)
    assert {t: len(rs) for t, rs in by_type.items()} == {
        "pulumi:providers:aws": 1, "aws:s3/bucketObjectv2:BucketObjectv2": 1,
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup": 1,
        "aws:sagemaker/model:Model": 1,
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration": 1,
        "aws:sagemaker/endpoint:Endpoint": 1, "aws:cloudwatch/metricAlarm:MetricAlarm": 1}
    [provider] = by_type["pulumi:providers:aws"]
    assert provider["inputs"]["region"] == REGION
    # every resource goes through the explicit provider named after the stack's
    assert {r["provider"].split("::")[3] for r in declared if r is not provider} == \
        {"sagemaker"}

    # the dataset: the object in state, uploaded from the stack's own file
    data = resource(run_mlform, stack, "transactions")
    [obj] = by_type["aws:s3/bucketObjectv2:BucketObjectv2"]
    key = data["outputs"]["uri"].removeprefix(f"s3://{BUCKET}/")
    assert (obj["import_id"], obj["inputs"]["bucket"], obj["inputs"]["key"]) == \
        (f"{BUCKET}/{key}", BUCKET, key)
    assert Path(obj["inputs"]["source"]["file_asset"]) == \
        (stack / "data" / "transactions.csv").resolve()
    live_tags = {t["Key"]: t["Value"]
                 for t in s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]}
    assert obj["inputs"]["tags"] == live_tags
    assert live_tags["mlform:resource"] == "transactions"

    # the model: its registry group and the SageMaker Model serving the current version
    model_state = resource(run_mlform, stack, "fraud_model")
    train_state = resource(run_mlform, stack, "train")
    [group] = by_type["aws:sagemaker/modelPackageGroup:ModelPackageGroup"]
    assert group["import_id"] == group["inputs"]["modelPackageGroupName"] == \
        model_state["outputs"]["name"]
    [model] = by_type["aws:sagemaker/model:Model"]
    sm_model = sm.describe_model(ModelName=model_state["private"]["sagemaker_model"])
    assert model["import_id"] == model["inputs"]["name"] == sm_model["ModelName"]
    container = model["inputs"]["primaryContainer"]
    assert container["modelDataUrl"] == train_state["outputs"]["artifact"] == \
        sm_model["PrimaryContainer"]["ModelDataUrl"]
    assert container["image"] == sm_model["PrimaryContainer"]["Image"]
    assert container["environment"] == sm_model["PrimaryContainer"]["Environment"]
    assert model["inputs"]["executionRoleArn"] == ROLE
    assert model["inputs"]["tags"]["team"] == "risk"
    assert model["inputs"]["tags"] == {t["Key"]: t["Value"] for t in sm.list_tags(
        ResourceArn=sm_model["ModelArn"])["Tags"]}

    # the endpoint and the config it runs on now: names, instance type and count, weights
    endpoint_state = resource(run_mlform, stack, "fraud_endpoint")
    live = sm.describe_endpoint(EndpointName=endpoint_state["outputs"]["name"])
    live_config = sm.describe_endpoint_config(EndpointConfigName=live["EndpointConfigName"])
    [config] = by_type["aws:sagemaker/endpointConfiguration:EndpointConfiguration"]
    assert config["import_id"] == config["inputs"]["name"] == live["EndpointConfigName"] == \
        endpoint_state["private"]["config_name"]
    [variant] = config["inputs"]["productionVariants"]
    [live_variant] = live_config["ProductionVariants"]
    assert variant == {"variantName": "champion", "modelName": sm_model["ModelName"],
                       "instanceType": live_variant["InstanceType"],
                       "initialInstanceCount": 2, "initialVariantWeight": 100.0}
    assert live_variant["InitialInstanceCount"] == 2
    capture = config["inputs"].get("dataCaptureConfig")
    assert (capture or {}).get("destinationS3Uri") == \
        live_config.get("DataCaptureConfig", {}).get("DestinationS3Uri")
    [endpoint] = by_type["aws:sagemaker/endpoint:Endpoint"]
    assert endpoint["import_id"] == endpoint["inputs"]["name"] == live["EndpointName"]
    assert endpoint["inputs"]["endpointConfigName"] == live["EndpointConfigName"]
    routing = endpoint["inputs"]["deploymentConfig"]["blueGreenUpdatePolicy"][
        "trafficRoutingConfiguration"]
    assert (routing["type"], routing["canarySize"]) == \
        ("CANARY", {"type": "CAPACITY_PERCENT", "value": 10})
    assert endpoint["inputs"]["tags"]["mlform:stack"] == "fraud"

    # the alarm its rollouts roll back on: the live one, referred to by the endpoint
    [alarm] = by_type["aws:cloudwatch/metricAlarm:MetricAlarm"]
    [alarm_name] = endpoint_state["private"]["alarms"]
    cw = boto3.client("cloudwatch", region_name=REGION, endpoint_url=aws)
    [live_alarm] = cw.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    assert alarm["import_id"] == alarm["inputs"]["name"] == alarm_name
    assert (alarm["inputs"]["threshold"], alarm["inputs"]["comparisonOperator"]) == \
        (live_alarm["Threshold"], live_alarm["ComparisonOperator"])
    assert [(q["id"], q.get("expression"), q.get("metric", {}).get("metricName"))
            for q in alarm["inputs"]["metricQueries"]] == \
        [(q["Id"], q.get("Expression"), q.get("MetricStat", {}).get("Metric", {})
          .get("MetricName")) for q in live_alarm["Metrics"]]
    assert alarm["inputs"]["tags"]["mlform:resource"] == "fraud_endpoint"
    assert endpoint["inputs"]["deploymentConfig"]["autoRollbackConfiguration"] == \
        {"alarms": [{"alarmName": alarm_name}]}

    # the header says what Pulumi cannot hold; a second export rewrites the program
    program = (out / "__main__.py").read_text()
    assert "training_job 'train'" in program and "pulumi-aws has no ModelPackage" in program
    assert program.count("retain_on_delete=True") == 6
    # what S3 and SageMaker cannot read back would fail the import: it is ignored
    assert "ignore_changes=['source']" in program
    assert "ignore_changes=['deployment_config']" in program
    ok(run_mlform, ["export", "pulumi", str(stack), "--out", str(out)], tmp_path)
    assert (out / "__main__.py").read_text() == program

    # a cloud that cannot be reached is an error in words, and the program stays as it was
    (stack / "mlform.yaml").write_text(STACK.format(
        region=REGION, role=ROLE, bucket=BUCKET, url="http://127.0.0.1:9").replace(
            "poll_interval: 0.01", "poll_interval: 0.01, max_attempts: 1"))
    failed = run_mlform(["export", "pulumi", str(stack), "--out", str(out)], tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: provider 'sagemaker' could not read its live "
                                    "resources: "), failed.stderr
    assert "help: the export reads each resource back" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert (out / "__main__.py").read_text() == program
