"""An endpoint experiment's verdict on aws from SageMaker data capture and the feedback
uploaded to S3 (providers/aws/experiment.py, capture.read_answers,
ground_truth.read_feedback), the plan-time checks, and the recorded verdict an endpoint's
refresh keeps. The end-to-end run through `mlform` is test_aws_experiment_e2e.py."""

from __future__ import annotations

import json

import pytest
from conftest import BUCKET, ROLE
from mlform.engine.provider import CheckRequest, ObserveRequest, ResourceRef, TickRequest
from mlform.providers.aws.capture import read_answers
from mlform.providers.aws.experiment import verdict
from mlform.providers.aws.ground_truth import read_feedback

CAPTURE = f"s3://{BUCKET}/capture/scorer/fraud-scorer/"
TRUTH = f"s3://{BUCKET}/truth/scorer/"
EXPERIMENT = {"name": "exp-1", "key": "key", "control": "current", "metric": "outcome",
              "test": "fixed_horizon", "alpha": 0.05, "power": 0.8, "mde": 1.0,
              "baseline": None, "promote_winner": False}


def capture_line(event: str, second: int, prediction, inference_id: str | None = None) -> str:
    meta = {"eventId": event, "inferenceTime": f"2026-12-03T21:00:{second:02d}Z"}
    if inference_id:
        meta["inferenceId"] = inference_id
    part = {"observedContentType": "application/json", "encoding": "JSON"}
    return json.dumps({"captureData": {
        "endpointInput": {**part, "data": json.dumps({"instances": [[1.0, 2.0]]})},
        "endpointOutput": {**part, "data": json.dumps({"predictions": [prediction]})}},
        "eventMetadata": meta, "eventVersion": "0"})


def put(s3, key: str, lines: list[str]) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode())


def test_each_captured_request_names_the_variant_its_path_holds(client):
    s3 = client("s3")
    put(s3, "capture/scorer/fraud-scorer/challenger/2026/12/03/21/00-01-000-a.jsonl",
        [capture_line("e2", 2, 1, "r2"), capture_line("e3", 3, 0)])
    put(s3, "capture/scorer/fraud-scorer/current/2026/12/03/21/00-01-000-b.jsonl",
        [capture_line("e1", 1, 0, "r1"), "{not json"])
    put(s3, "capture/scorer/fraud-scorer-other/current/2026/12/03/21/x.jsonl",
        [capture_line("e9", 9, 0, "r9")])  # another endpoint whose name starts alike
    answers = read_answers(s3, CAPTURE)
    # oldest first; the id ground truth joins on: the InferenceId, else the eventId
    assert [(a["id"], a["variant"], a["predictions"]) for a in answers] == [
        ("r1", "current", [0]), ("r2", "challenger", [1]), ("e3", "challenger", [0])]


def test_feedback_lines_give_labels_and_outcomes(client):
    s3 = client("s3")
    put(s3, "truth/scorer/a.jsonl", [
        json.dumps({"id": "r1", "labels": [1]}),
        json.dumps({"id": "r2", "outcome": 12.5}),
        json.dumps({"id": "r3", "labels": [0], "outcome": -1}),
        json.dumps({"groundTruthData": {"data": "1", "encoding": "CSV"},
                    "eventMetadata": {"eventId": "e4"}, "eventVersion": "0"}),
        json.dumps({"id": "r5", "outcome": "high"}), json.dumps({"id": "r6", "outcome": True}),
        "{broken"])
    assert read_feedback(s3, TRUTH) == [
        {"id": "r1", "labels": [1]}, {"id": "r2", "outcome": 12.5},
        {"id": "r3", "labels": [0], "outcome": -1.0}, {"id": "e4", "labels": [1]}]


def test_a_planted_outcome_difference_is_decided_between_the_specs_variants(client):
    s3 = client("s3")
    lines = {"current": [], "challenger_b": []}
    feedback = []
    for i in range(60):
        variant = "current" if i % 2 else "challenger_b"
        lines[variant].append(capture_line(f"e{i}", i % 60, 0, f"r{i}"))
        feedback.append(json.dumps({"id": f"r{i}", "outcome": (10.0 if variant == "current"
                                                                else 14.0) + i % 3}))
    for variant, captured in lines.items():  # SageMaker's name of challenger_b
        put(s3, f"capture/scorer/fraud-scorer/{variant.replace('_', '-')}/2026/12/03/21/f.jsonl",
            captured)
    put(s3, "capture/scorer/fraud-scorer/old-variant/2026/12/03/20/f.jsonl",
        [capture_line("gone", 0, 0, "r0")])  # a variant the spec no longer has
    put(s3, "truth/scorer/outcomes.jsonl", feedback)
    found = verdict(s3, EXPERIMENT, ["current", "challenger_b"], CAPTURE, TRUTH, now=1.0)
    assert (found["status"], found["winner"]) == ("winner", "challenger_b")
    assert {v: (row["requests"], row["observations"]) for v, row in
            found["variants"].items()} == {"current": (30, 30), "challenger_b": (30, 30)}
    assert found["comparisons"]["challenger_b"]["difference"] == pytest.approx(4.0, abs=0.2)


ENDPOINT = {"variants": {"current": {"model": "arn:a", "weight": 50},
                         "challenger": {"model": "arn:b", "weight": 50}},
            "experiment": {"name": "exp-1"}}


@pytest.mark.parametrize(("inputs", "problems"), [
    pytest.param(ENDPOINT, [], id="capture on by default"),
    pytest.param({**ENDPOINT, "logging": {"sample_rate": 0}}, [("logging", "sample_rate")],
                 id="no capture, no verdict"),
    pytest.param({**ENDPOINT, "provider_options": {"aws": {"ground_truth_uri": "/tmp/x"}}},
                 [("provider_options", "aws", "ground_truth_uri")], id="feedback not in S3"),
    pytest.param({k: v for k, v in ENDPOINT.items() if k != "experiment"} |
                 {"logging": {"sample_rate": 0}}, [], id="no experiment, capture optional"),
])
def test_an_experiment_that_could_not_be_measured_is_refused_at_plan(make_provider, inputs,
                                                                     problems):
    found = make_provider().check(CheckRequest(ResourceRef("scorer", "endpoint"), inputs))
    assert [p.path for p in found.problems] == problems


def live_endpoint(client, capture: bool) -> str:
    """A SageMaker endpoint of two variants made directly, with or without capture."""
    sm = client("sagemaker")
    for model in ("ma", "mb"):
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "img", "ModelDataUrl": f"s3://{BUCKET}/{model}/model.tar.gz"})
    extra = {"DataCaptureConfig": {
        "EnableCapture": True, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": f"s3://{BUCKET}/capture/scorer",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}} \
        if capture else {}
    sm.create_endpoint_config(EndpointConfigName="fraud-scorer-c", ProductionVariants=[
        {"VariantName": v, "ModelName": m, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 50.0}
        for v, m in (("current", "ma"), ("challenger", "mb"))], **extra)
    sm.create_endpoint(EndpointName="fraud-scorer", EndpointConfigName="fraud-scorer-c")
    return "fraud-scorer"


def tick(provider, inputs: dict, outputs: dict):
    return provider.tick(TickRequest(ResourceRef("scorer", "endpoint", outputs["name"]),
                                     inputs, outputs, {}, {}, now=5.0))


def test_the_tick_measures_from_the_live_capture_or_says_why_it_cannot(client, make_provider):
    provider = make_provider()
    name = live_endpoint(client, capture=False)
    assert tick(provider, {k: v for k, v in ENDPOINT.items() if k != "experiment"},
                {"name": name}) is None
    refused = tick(provider, ENDPOINT, {"name": name})
    assert refused.error == (f"endpoint {name} captures no traffic, which its experiment "
                             "reads: give it `logging: {sample_rate: 1.0}`")


def test_the_tick_reads_the_default_ground_truth_prefix(client, make_provider):
    s3 = client("s3")
    name = live_endpoint(client, capture=True)
    put(s3, f"capture/scorer/{name}/current/2026/12/03/21/f.jsonl",
        [capture_line("e1", 1, 1, "r1")])
    put(s3, f"mlform/fraud/ground-truth/{name}/labels.jsonl",
        [json.dumps({"id": "r1", "labels": [1]})])
    answered = tick(make_provider(), ENDPOINT, {"name": name})
    measured = answered.outputs["experiment"]
    assert measured["status"] == "collecting" and answered.events == [measured["summary"]]
    assert measured["variants"]["current"] | {"serving": {}} == {
        "requests": 1, "observations": 1, "mean": 1.0, "auc": None, "serving": {}}


@pytest.mark.parametrize(("running", "kept"), [
    pytest.param("exp-1", True, id="the same experiment keeps its verdict"),
    pytest.param("exp-2", False, id="a new experiment drops it"),
])
def test_a_refresh_keeps_the_verdict_of_the_experiment_still_running(client, make_provider,
                                                                     running, kept):
    name = live_endpoint(client, capture=True)
    recorded = {"name": "exp-1", "status": "winner", "winner": "challenger"}
    inputs = {**ENDPOINT, "experiment": {"name": running}}
    seen = make_provider().observe(ObserveRequest(
        ResourceRef("scorer", "endpoint", name), inputs,
        {"name": name, "alarms": [], "experiment": recorded}))
    assert seen.outputs.get("experiment") == (recorded if kept else None)


def test_traffic_is_keyed_by_the_specs_variant_names(client, make_provider):
    """A variant named `model_b` serves as SageMaker's `model-b`; its traffic is recorded
    under `model_b`, the name a promoted winner is looked up by (a regression: keyed by
    the SageMaker name, a promotion that was done looked undone on every watch pass)."""
    sm = client("sagemaker")
    for model in ("ma", "mb"):
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": "img", "ModelDataUrl": f"s3://{BUCKET}/{model}/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="fraud-named-c", ProductionVariants=[
        {"VariantName": v, "ModelName": m, "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": w}
        for v, m, w in (("current", "ma", 0.0), ("model-b", "mb", 100.0))])
    sm.create_endpoint(EndpointName="fraud-named", EndpointConfigName="fraud-named-c")
    inputs = {"variants": {"current": {"model": "arn:a", "weight": 0},
                           "model_b": {"model": "arn:b", "weight": 100}}}
    seen = make_provider().observe(ObserveRequest(
        ResourceRef("named", "endpoint", "fraud-named"), inputs,
        {"name": "fraud-named", "alarms": []}))
    assert seen.outputs["traffic"] == {"current": 0.0, "model_b": 100.0}
