"""The aws provider's verbs in the order an apply drives them, against moto's server."""

from __future__ import annotations

import json

import pytest
from aws_stack import (
    Recorder,
    create,
    dataset_inputs,
    delete,
    endpoint_inputs,
    model_inputs,
    observe,
    training_inputs,
    update,
    write_data,
)
from conftest import BUCKET
from mlform.engine.provider import (
    CreateRequest,
    DiffRequest,
    Failure,
    ResourceRef,
    TickRequest,
)
from moto_extensions import SCRIPT


@pytest.fixture
def applied(tmp_path, make_provider):
    """The example stack created resource by resource; (provider, inputs, outputs)."""
    write_data(tmp_path)
    provider = make_provider()
    inputs, outputs = {}, {}

    def add(name, rtype, spec):
        inputs[name] = spec
        answer = create(provider, name, rtype, spec)
        assert answer.error is None, answer.error
        outputs[name] = answer.outputs
        return answer

    SCRIPT.training["fraud-train-"] = {"metrics": {"auc": 0.93, "accuracy": 0.9}}
    add("transactions", "dataset", dataset_inputs())
    add("train", "training_job", training_inputs(outputs["transactions"]["uri"]))
    add("fraud_model", "model", model_inputs(outputs["train"]["artifact"]))
    add("fraud_endpoint", "endpoint", endpoint_inputs(outputs["fraud_model"]["uri"]))
    return provider, inputs, outputs


def test_the_example_stack_is_created_in_order(applied, client):
    _, _, out = applied
    assert out["transactions"]["uri"].startswith(
        f"s3://{BUCKET}/mlform/fraud/datasets/transactions/")
    assert out["transactions"]["rows"] == 60
    assert out["train"]["metrics"] == {"auc": 0.93, "accuracy": 0.9}
    assert out["fraud_model"]["version"] == 1
    assert out["fraud_model"]["gates"][0] == {
        "gate": "auc >= 0.85", "kind": "metric", "passed": True, "measured": 0.93,
        "min": 0.85, "max": None, "detail": "", "groups": {}, "sensitive": []}
    assert out["fraud_endpoint"]["url"] == ("https://runtime.sagemaker.us-east-1.amazonaws.com"
                                            "/endpoints/fraud-fraud-endpoint/invocations")
    assert out["fraud_endpoint"]["traffic"] == {"champion": 100.0}
    package = client("sagemaker").describe_model_package(
        ModelPackageName=out["fraud_model"]["uri"])
    assert package["ModelApprovalStatus"] == "Approved"
    alarm = client("cloudwatch").describe_alarms(
        AlarmNames=["fraud-fraud-endpoint-champion-error-rate"])["MetricAlarms"][0]
    assert alarm["Threshold"] == 0.05


def test_training_progress_shows_the_intermediate_status(tmp_path, make_provider):
    write_data(tmp_path)
    provider = make_provider()
    uri = create(provider, "transactions", "dataset", dataset_inputs()).outputs["uri"]
    progress = Recorder()
    provider.create(CreateRequest(ResourceRef("train", "training_job"),
                                  training_inputs(uri), "k"), progress)
    assert any("InProgress / Training" in m for m in progress.messages)


def test_a_repeated_training_create_adopts_the_job(applied, client):
    provider, inputs, outputs = applied
    again = create(provider, "train", "training_job", inputs["train"])
    assert again.error is None
    assert again.outputs["run_id"] == outputs["train"]["run_id"]
    jobs = client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs] == [outputs["train"]["run_id"]]


def test_a_failed_training_job_reports_its_reason(tmp_path, make_provider):
    write_data(tmp_path)
    provider = make_provider()
    uri = create(provider, "transactions", "dataset", dataset_inputs()).outputs["uri"]
    SCRIPT.training["fraud-train-"] = {"fail": "AlgorithmError: loss is NaN"}
    answer = create(provider, "train", "training_job", training_inputs(uri))
    assert answer.error.startswith("training job fraud-train-")
    assert "failed: AlgorithmError: loss is NaN" in answer.error


def test_changed_hyperparameters_force_a_new_job_with_a_reason(applied):
    provider, inputs, outputs = applied
    after = {**inputs["train"], "hyperparameters": {"epochs": 9, "lr": 0.01}}
    diff = provider.diff(DiffRequest(ResourceRef("train", "training_job"), inputs["train"],
                                     outputs["train"], after))
    assert diff.requires_replace == ["hyperparameters.epochs"]
    assert diff.changes[0].reason == "new hyperparameters mean a new run"


def test_dataset_diff_plans_the_new_version_and_says_why(applied, tmp_path):
    provider, inputs, outputs = applied
    write_data(tmp_path, "amount,is_fraud\n1,0\n2,1\n")
    diff = provider.diff(DiffRequest(ResourceRef("transactions", "dataset"),
                                     inputs["transactions"], outputs["transactions"],
                                     inputs["transactions"]))
    new = diff.planned_outputs["version"]
    assert new != outputs["transactions"]["version"]
    assert diff.note == (f"source content changed: version "
                         f"{outputs['transactions']['version']} -> {new}")


def test_a_failed_gate_names_gate_value_and_threshold_and_registers_nothing(applied, client):
    provider, _, outputs = applied
    answer = create(provider, "strict_model", "model",
                    model_inputs(outputs["train"]["artifact"], min_auc=0.97))
    assert answer.error == ("gate 'auc >= 0.97' failed: measured 0.9300; "
                            "model 'strict_model' was not registered")
    assert answer.failure == Failure.GATE_FAILED  # what a gate_failed incident opens from
    groups = client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert [g["ModelPackageGroupName"] for g in groups] == ["fraud-fraud-model"]


def test_fairness_gates_read_the_processing_job_output(applied, client):
    """moto runs no container: the evaluation the Processing job would write is put
    in S3 beforehand, where the job's output goes."""
    provider, _, outputs = applied
    gate = {"fairness": "demographic_parity_difference", "sensitive_column": "gender",
            "max": 0.1}
    spec = {"artifact": outputs["train"]["artifact"], "gates": [gate]}
    from mlform.ml.gates import GateResult
    from mlform.providers.aws.naming import fingerprint

    handler = provider.handler("model")
    settings = {"gates": [handler.spec(spec).gates[0].model_dump(mode="json")],
                "seed": 0, "sensitive": []}
    key = handler.layout.evaluation_key("fair_model", fingerprint(
        {"artifact": spec["artifact"], "format": 2, **settings}))
    label = "demographic_parity_difference(gender): demographic_parity_difference <= 0.1"
    result = GateResult(label, "fairness", False, 0.25, None, 0.1)
    client("s3").put_object(Bucket=BUCKET, Key=key,
                            Body=json.dumps({"format": 2, "gates": [result.to_dict()]}))
    answer = create(provider, "fair_model", "model", spec)
    assert answer.error == (f"gate '{label}' failed: measured 0.2500; "
                            "model 'fair_model' was not registered")
    assert answer.failure == Failure.GATE_FAILED
    jobs = client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"]
    assert len(jobs) == 1 and jobs[0]["ProcessingJobName"].startswith("fraud-fair-model-eval-")


def test_observe_sees_weights_changed_out_of_band(applied, client):
    provider, inputs, outputs = applied
    client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName="fraud-fraud-endpoint",
        DesiredWeightsAndCapacities=[{"VariantName": "champion", "DesiredWeight": 30.0}])
    seen = observe(provider, "fraud_endpoint", "endpoint", inputs["fraud_endpoint"],
                   outputs["fraud_endpoint"])
    assert seen.exists
    assert seen.inputs == {"variants": {"champion": {"weight": 30}}}


def test_observe_reports_no_difference_when_nothing_changed(applied):
    provider, inputs, outputs = applied
    for name, rtype in [("fraud_endpoint", "endpoint"), ("train", "training_job")]:
        seen = observe(provider, name, rtype, inputs[name], outputs[name])
        assert seen.exists and seen.healthy
        assert not any(seen.inputs.values()), seen.inputs


def test_observe_sees_a_model_deleted_out_of_band(applied, client):
    provider, inputs, outputs = applied
    client("sagemaker").delete_model(ModelName=outputs["fraud_model"]["sagemaker_model"])
    seen = observe(provider, "fraud_model", "model", inputs["fraud_model"],
                   outputs["fraud_model"])
    assert not seen.exists
    assert seen.detail.startswith(f"SageMaker model {outputs['fraud_model']['sagemaker_model']}")


def _second_version(provider, inputs, outputs, client):
    """A second registered model version for the endpoint to move to."""
    SCRIPT.training["fraud-train-"] = {"metrics": {"auc": 0.95}}
    job = create(provider, "train", "training_job",
                 {**inputs["train"], "seed": 1}).outputs
    return update(provider, "fraud_model", "model", inputs["fraud_model"],
                  outputs["fraud_model"], model_inputs(job["artifact"])).outputs


def test_an_update_rolls_out_by_canary_and_deletes_the_old_config(applied, client):
    provider, inputs, outputs = applied
    model = _second_version(provider, inputs, outputs, client)
    assert model["version"] == 2
    answer = update(provider, "fraud_endpoint", "endpoint", inputs["fraud_endpoint"],
                    outputs["fraud_endpoint"], endpoint_inputs(model["uri"]))
    assert answer.error is None, answer.error
    sent = SCRIPT.deployment_configs["fraud-fraud-endpoint"][-1]
    assert sent["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "CANARY", "WaitIntervalInSeconds": 5,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    assert sent["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": "fraud-fraud-endpoint-champion-error-rate"}]}
    configs = [c["EndpointConfigName"] for c in
               client("sagemaker").list_endpoint_configs()["EndpointConfigs"]]
    assert configs == [answer.outputs["config_name"]]
    assert answer.outputs["config_name"] != outputs["fraud_endpoint"]["config_name"]


@pytest.mark.parametrize(("outcome", "expected", "failure"), [
    ("rollback", "rolled back to {old}: alarm fraud-fraud-endpoint-champion-error-rate in "
                 "ALARM; the old config {old} is kept", Failure.ROLLED_BACK),
    # a failed endpoint is an apply error, not a rollback: no rollback incident opens
    ("failed", "Failed during the update to {new}: alarm fraud-fraud-endpoint-champion-"
               "error-rate in ALARM; {old} is kept", None),
], ids=["auto-rollback-to-the-old-config", "endpoint-failed"])
def test_a_failed_update_keeps_the_old_config(applied, client, outcome, expected, failure):
    provider, inputs, outputs = applied
    model = _second_version(provider, inputs, outputs, client)
    SCRIPT.endpoint_updates["fraud-fraud-endpoint"] = {
        "outcome": outcome, "reason": "alarm fraud-fraud-endpoint-champion-error-rate in ALARM"}
    answer = update(provider, "fraud_endpoint", "endpoint", inputs["fraud_endpoint"],
                    outputs["fraud_endpoint"], endpoint_inputs(model["uri"]))
    old = outputs["fraud_endpoint"]["config_name"]
    configs = [c["EndpointConfigName"] for c in
               client("sagemaker").list_endpoint_configs()["EndpointConfigs"]]
    new = next(c for c in configs if c != old)
    assert answer.error.endswith(expected.format(old=old, new=new))
    assert answer.failure == failure
    assert old in configs


def test_a_weight_only_change_keeps_the_config(applied, client):
    provider, inputs, outputs = applied
    after = endpoint_inputs(outputs["fraud_model"]["uri"])
    after["variants"]["champion"]["weight"] = 50
    answer = update(provider, "fraud_endpoint", "endpoint", inputs["fraud_endpoint"],
                    outputs["fraud_endpoint"], after)
    assert answer.outputs["config_name"] == outputs["fraud_endpoint"]["config_name"]
    live = client("sagemaker").describe_endpoint(EndpointName="fraud-fraud-endpoint")
    assert live["ProductionVariants"][0]["CurrentWeight"] == 50.0
    assert "fraud-fraud-endpoint" not in SCRIPT.deployment_configs


def test_delete_of_everything_leaves_nothing_tagged(applied):
    provider, inputs, outputs = applied
    assert sorted(t for t, _ in provider.list_owned()) == \
        ["dataset", "endpoint", "model", "training_job"]
    for name, rtype in [("fraud_endpoint", "endpoint"), ("fraud_model", "model"),
                        ("train", "training_job"), ("transactions", "dataset")]:
        assert delete(provider, name, rtype, inputs[name], outputs[name]).error is None
    assert provider.list_owned() == []


def test_orphans_of_another_stack_are_not_listed(applied, make_provider):
    assert make_provider(stack="other").list_owned() == []


def test_a_monitor_judges_captured_traffic_and_publishes_the_verdict(applied, client):
    provider, _, outputs = applied
    spec = {"endpoint": "fraud-fraud-endpoint", "reference": outputs["transactions"]["uri"],
            "features": ["amount", "age"], "min_rows": 5}
    created = create(provider, "drift", "monitor", spec)
    assert created.error is None, created.error
    capture_uri = created.outputs["capture_uri"]
    assert capture_uri.endswith("/capture/fraud_endpoint/fraud-fraud-endpoint/")
    assert created.outputs["report"] == f"s3://{BUCKET}/mlform/fraud/monitors/drift/report.html"
    assert created.outputs["evaluations"] == f"s3://{BUCKET}/mlform/fraud/monitors/drift/evaluations/"
    shifted = {"instances": [[5000.0 + i, 90] for i in range(20)]}
    line = json.dumps({"captureData": {"endpointInput": {
        "observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
        "data": json.dumps(shifted)}}})
    bucket, key = capture_uri[5:].split("/", 1)
    client("s3").put_object(Bucket=bucket, Key=key + "AllTraffic/2026/01/01/00/a.jsonl",
                            Body=line + "\n")
    tick = provider.tick(TickRequest(ResourceRef("drift", "monitor"), spec, created.outputs,
                                     {}, {}, now=1.0))
    assert tick.error is None, tick.error
    assert tick.outputs["last_evaluation"]["verdict"] == "drift"
    assert tick.outputs["last_evaluation"]["drifted_features"] == ["amount", "age"]
    assert tick.outputs["last_evaluation"]["evaluation"].startswith(created.outputs["evaluations"])
    assert tick.breach["features"] == ["amount", "age"]
    metrics = client("cloudwatch").list_metrics(Namespace="mlform")["Metrics"]
    assert {m["MetricName"] for m in metrics} == {"DriftShare", "Drifted"}


def test_a_batch_job_scores_the_dataset_with_a_transform_job(applied, client):
    provider, _, outputs = applied
    spec = {"model": outputs["fraud_model"]["uri"], "dataset": outputs["transactions"]["uri"]}
    answer = create(provider, "scores", "batch_job", spec)
    assert answer.error is None, answer.error
    job = client("sagemaker").describe_transform_job(TransformJobName=answer.outputs["job"])
    assert job["ModelName"] == outputs["fraud_model"]["sagemaker_model"]
    assert ("batch_job", answer.outputs["job"]) in provider.list_owned()


def test_an_endpoint_still_creating_after_a_killed_apply_is_waited_for_not_adopted(
        applied, client):
    """A killed apply may leave an endpoint Creating: refresh must not record it as done,
    and the next create must wait for that endpoint instead of making a second one."""
    from mlform.engine.provider import ObserveRequest, Progress

    provider, inputs, outputs = applied
    sm = client("sagemaker")
    config = sm.describe_endpoint(EndpointName="fraud-fraud-endpoint")["EndpointConfigName"]
    sm.create_endpoint(EndpointName="fraud-late", EndpointConfigName=config)
    SCRIPT.pending[("endpoint", "fraud-late")] = 3
    seen = provider.observe(ObserveRequest(ResourceRef("late", "endpoint"),
                                           inputs["fraud_endpoint"], None,
                                           idempotency_key="fraud.late.0123"))
    assert not seen.exists and "Creating" in seen.detail
    done = provider.create(CreateRequest(ResourceRef("late", "endpoint"),
                                         inputs["fraud_endpoint"], "fraud.late.0123"),
                           Progress())
    assert done.error is None, done.error
    assert done.id == "fraud-late"
    names = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    assert names.count("fraud-late") == 1
    assert sm.describe_endpoint(EndpointName="fraud-late")["EndpointStatus"] == "InService"


def test_deleting_a_model_disowns_its_gate_evaluation_jobs(applied, client):
    """Processing jobs cannot be deleted; after the model goes they carry no stack tag."""
    provider, _, outputs = applied
    gate = {"fairness": "demographic_parity_difference", "sensitive_column": "gender",
            "max": 0.1}
    spec = {"artifact": outputs["train"]["artifact"], "gates": [gate]}
    create(provider, "fair_model", "model", spec)  # fails its gate; the job stays
    sm = client("sagemaker")
    job = sm.list_processing_jobs()["ProcessingJobSummaries"][0]
    tagged = {t["Key"] for t in sm.list_tags(ResourceArn=job["ProcessingJobArn"])["Tags"]}
    assert "mlform:stack" in tagged
    assert delete(provider, "fair_model", "model", spec, {}).error is None
    left = {t["Key"] for t in sm.list_tags(ResourceArn=job["ProcessingJobArn"])["Tags"]}
    assert not any(k.startswith("mlform:") for k in left)


def test_sensitive_gate_bounds_and_card_fields_stay_hidden(applied, client):
    """A bound or card field from a sensitive value is judged and used, never stored or
    printed: not in the failure, the outputs (state), nor the package's metadata."""
    from mlform.engine.values import Secret

    provider, _, outputs = applied
    artifact = outputs["train"]["artifact"]
    failing = {"artifact": artifact, "gates": [{"metric": "auc", "min": Secret(0.987654)}]}
    answer = create(provider, "strict_model", "model", failing)
    assert answer.error == ("gate 'auc >= (sensitive)' failed: measured 0.9300; "
                            "model 'strict_model' was not registered")
    assert answer.failure == Failure.GATE_FAILED
    passing = {"artifact": artifact, "owner": Secret("owner-secret-41d2"),
               "intended_use": Secret("use-secret-93be"),
               "gates": [{"metric": "auc", "min": Secret(0.876543)}]}
    answer = create(provider, "quiet_model", "model", passing)
    assert answer.error is None, answer.error
    assert answer.outputs["gates"] == [{
        "gate": "auc >= (sensitive)", "kind": "metric", "passed": True, "measured": 0.93,
        "min": None, "max": None, "detail": "", "groups": {}, "sensitive": ["min"]}]
    package = client("sagemaker").describe_model_package(ModelPackageName=answer.outputs["uri"])
    stored = json.dumps(package, default=str)
    assert package["CustomerMetadataProperties"]["mlform:owner"] == "(sensitive)"
    assert package["ModelPackageDescription"] == "(sensitive)"
    for secret in ("0.876543", "owner-secret-41d2", "use-secret-93be"):
        assert secret not in stored + json.dumps(answer.outputs)
