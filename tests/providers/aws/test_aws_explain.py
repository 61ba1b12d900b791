"""Per-request explanations on SageMaker endpoints: `{"instances": [...], "explain": true}`
sent to InvokeEndpoint is answered by mlform's inference script (`container_serve`) with
local's `POST /explain` answer, the same numbers as `mlform.ml.explain.occlusion` on the
same artifact; data capture captures those calls like every invocation, and the
monitor's window skips them (`capture`)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import BUCKET, ROLE
from mlform.engine.provider import ResourceRef, TickRequest
from mlform.ml.explain import MAX_EXPLAINED, occlusion
from mlform.providers.aws import container_serve, packaging
from mlform.providers.aws.capture import read_answers, read_capture
from sagemaker_inference.errors import BaseInferenceToolkitError

META = {"task": "classification", "features": ["amount", "age"], "target": "is_fraud",
        "classes": [0, 1], "preprocessing": {
            "amount": {"kind": "numeric", "mean": 10.0, "std": 5.0},
            "age": {"kind": "numeric", "mean": 40.0, "std": 10.0}}}
ROWS = [[1.0, 20.0], [30.0, 70.0], [10.0, 40.0], [-5.0, 90.0]]
AS_OBJECTS = [{"age": 20.0, "amount": 1.0}, {"age": 70.0, "amount": 30.0}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    import torch
    from mlform.ml.artifact import save_model

    torch.manual_seed(5)
    return save_model(tmp_path_factory.mktemp("model"), torch.nn.Linear(2, 1), META)


@pytest.fixture(scope="module")
def predictor(model_dir):
    return container_serve.model_fn(str(model_dir))


def served(body: dict, predictor) -> dict:
    """What the script answers to `body`, through its four functions as the container
    calls them."""
    request = container_serve.input_fn(json.dumps(body).encode(), "application/json")
    text, _ = container_serve.output_fn(container_serve.predict_fn(request, predictor),
                                        "application/json")
    return json.loads(text)


@pytest.mark.slow
def test_the_bundled_script_explains_as_occlusion_on_the_artifact(model_dir, tmp_path):
    """The serving bundle alone (mlform.ml as shipped, nothing installed) answers the
    attributions `occlusion` computes on the same artifact, in local's answer shape."""
    from mlform.ml.artifact import load_predictor

    data = packaging.tarball(packaging.bundle("serve", {"resource": "m"}))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp_path / "code", filter="data")
    probe = (f"import sys; sys.path.insert(0, {str(tmp_path / 'code')!r}); import serve, json;"
             f" p = serve.model_fn({str(model_dir)!r}); "
             f"x = serve.input_fn({json.dumps({'instances': ROWS, 'explain': True})!r}, "
             "'application/json'); "
             "print(serve.output_fn(serve.predict_fn(x, p), 'application/json')[0])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "explanations": occlusion(load_predictor(model_dir), ROWS), "method": "occlusion",
        "baseline": "training means", "variant": None, "model": None}


@pytest.mark.parametrize(("body", "asked"), [
    pytest.param({"instances": AS_OBJECTS, "explain": True}, "explanations",
                 id="objects by feature name are explained"),
    pytest.param({"instances": ROWS, "parameters": {"explain": True}}, "explanations",
                 id="the flag under parameters, as one-route servers take options"),
    pytest.param({"instances": ROWS, "explain": False}, "predictions",
                 id="explain false is a prediction"),
    pytest.param({"instances": ROWS}, "predictions", id="no flag is a prediction"),
])
def test_the_body_says_whether_it_asks_for_explanations(predictor, body, asked):
    answer = served(body, predictor)
    if asked == "predictions":
        assert answer == {"predictions": predictor.predict(body["instances"])}
    else:
        assert answer["explanations"] == occlusion(predictor, body["instances"])
        assert (answer["method"], answer["baseline"]) == ("occlusion", "training means")


@pytest.mark.parametrize(("body", "refused_by", "message"), [
    pytest.param({"instances": ROWS, "explain": "yes"}, "input_fn",
                 "'explain' must be true or false, not 'yes'", id="a flag that is no boolean"),
    pytest.param({"instances": [], "explain": True}, "input_fn",
                 "'instances' must be a non-empty list of instances, each a list of feature "
                 "values or an object keyed by feature name", id="no instances"),
    pytest.param({"instances": [[1.0, 2.0]] * (MAX_EXPLAINED + 1), "explain": True},
                 "predict_fn", f"at most {MAX_EXPLAINED} instances can be explained in one "
                 f"request; this one has {MAX_EXPLAINED + 1}", id="more than MAX_EXPLAINED"),
    pytest.param({"instances": [[1.0]], "explain": True}, "predict_fn",
                 "cannot explain these instances: instance 0 has 1 values; expected 2 "
                 "(amount, age)", id="an instance the model cannot take"),
])
def test_bad_explanation_bodies_are_refused_in_local_words(predictor, body, refused_by,
                                                           message):
    raw = json.dumps(body).encode()
    if refused_by == "input_fn":
        with pytest.raises(ValueError) as refused:
            container_serve.input_fn(raw, "application/json")
    else:
        request = container_serve.input_fn(raw, "application/json")
        with pytest.raises(ValueError) as refused:
            container_serve.predict_fn(request, predictor)
    assert str(refused.value) == message
    # the SageMaker inference toolkit answers its own error with that status; any other
    # exception is a 500, a ModelError to the client
    assert isinstance(refused.value, BaseInferenceToolkitError)
    assert (refused.value.status_code, refused.value.message) == (400, message)


# --- through moto's InvokeEndpoint, with data capture -----------------------------

def serve_with_capture(client, model_dir: Path, name: str) -> str:
    """The artifact as SageMaker keeps it behind a live endpoint whose every request
    is captured, input and output, under s3://BUCKET/capture/."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    client("s3").put_object(Bucket=BUCKET, Key=f"{name}/model.tar.gz", Body=raw.getvalue())
    sm = client("sagemaker")
    sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "pytorch-inference", "ModelDataUrl": f"s3://{BUCKET}/{name}/model.tar.gz"})
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config", ProductionVariants=[{
            "VariantName": "champion", "ModelName": f"{name}-model",
            "InitialInstanceCount": 1, "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 1.0}],
        DataCaptureConfig={
            "EnableCapture": True, "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{BUCKET}/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    return name


def invoke(client, name: str, body: dict) -> tuple[dict, str]:
    r = client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, ContentType="application/json", Accept="application/json",
        Body=json.dumps(body).encode())
    return json.loads(r["Body"].read()), r["InvokedProductionVariant"]


def monitor_window(client, make_provider, name: str) -> dict:
    """One evaluation of a monitor watching the endpoint: the stored evaluation."""
    s3 = client("s3")
    s3.put_object(Bucket=BUCKET, Key="data/explain-reference.csv",
                  Body="".join(["amount,age\n"] + [f"{i % 30},{20 + i % 50}\n"
                                                   for i in range(200)]).encode())
    inputs = {"endpoint": name, "reference": f"s3://{BUCKET}/data/explain-reference.csv",
              "features": ["amount", "age"], "window_rows": 200, "min_rows": 1,
              "drift_share": 0.3, "schedule": "1h"}
    answer = make_provider().tick(TickRequest(
        ResourceRef("explained", "monitor", "explained"), inputs,
        {"capture_uri": f"s3://{BUCKET}/capture/{name}/", "last_evaluation": None}, {}, {},
        now=2_000_000.0))
    assert answer.error is None, answer.error
    where = answer.outputs["last_evaluation"]["evaluation"]
    return json.loads(s3.get_object(Bucket=BUCKET, Key=where.split("/", 3)[3])["Body"].read())


@pytest.mark.e2e
def test_invoke_endpoint_explains_and_the_monitor_skips_the_explanations(
        client, make_provider, model_dir):
    from mlform.ml.artifact import load_predictor

    name = serve_with_capture(client, model_dir, "explain-ep")
    predicted, _ = invoke(client, name, {"instances": ROWS})
    explained, variant = invoke(client, name, {"instances": ROWS[:3], "explain": True})

    assert explained == {"explanations": occlusion(load_predictor(model_dir), ROWS[:3]),
                         "method": "occlusion", "baseline": "training means",
                         "variant": None, "model": None}
    assert variant == "champion"  # the variant that explained, as InvokeEndpoint names it
    assert [e["prediction"] for e in explained["explanations"]] == \
        predicted["predictions"][:3]

    captured = [o["Key"] for o in client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix=f"capture/{name}/champion/")["Contents"]]
    assert len(captured) == 2  # SageMaker captures the explanation call too
    evaluation = monitor_window(client, make_provider, name)
    assert evaluation["rows"]["current"] == len(ROWS)  # the predictions' rows alone


def capture_line(event: str, request: dict, answer: dict) -> str:
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                          "encoding": "JSON", "data": json.dumps(request)},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                           "encoding": "JSON", "data": json.dumps(answer)}},
        "eventMetadata": {"eventId": event, "inferenceTime": "2026-01-01T00:00:10Z"},
        "eventVersion": "0"})


def test_captured_explanation_calls_are_no_rows_of_the_window_nor_outcomes(client):
    explanation = {"explanations": [], "method": "occlusion"}
    lines = [capture_line("p1", {"instances": [{"amount": 1.0}]}, {"predictions": [0]}),
             capture_line("e1", {"instances": [{"amount": 9.0}], "explain": True},
                          explanation),
             capture_line("e2", {"instances": [{"amount": 8.0}],
                                 "parameters": {"explain": True}}, explanation),
             capture_line("p2", {"instances": [{"amount": 2.0}], "explain": False},
                          {"predictions": [1]})]
    client("s3").put_object(Bucket=BUCKET, Key="capture/explained/champion/f.jsonl",
                            Body="\n".join(lines).encode())
    traffic = read_capture(client("s3"), f"s3://{BUCKET}/capture/explained/", 100, None)
    assert traffic.features["amount"].tolist() == [1.0, 2.0]
    assert traffic.predictions == [0, 1]
    # nor outcomes of an experiment
    answers = read_answers(client("s3"), f"s3://{BUCKET}/capture/explained/")
    assert [(a["id"], a["variant"]) for a in answers] == [("p1", "champion"),
                                                          ("p2", "champion")]
