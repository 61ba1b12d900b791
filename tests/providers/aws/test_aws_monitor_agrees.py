"""The same logged rows give the same monitor evaluation on local and on aws: one window
of traffic written as the local endpoint logs it (requests.jsonl, feedback.jsonl) and as
SageMaker captures it (capture files in S3, ground truth uploaded to S3), evaluated by
each provider's monitor, performance included."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import BUCKET
from mlform.engine.provider import ProviderContext, ResourceRef, TickRequest
from mlform.providers.aws.monitor import no_ground_truth
from mlform.providers.local.monitoring.handler import MonitorHandler
from mlform.providers.local.paths import LocalPaths, dataset_uri

FEATURES = ["amount", "age", "country"]
NOW = 2_000_000.0
CAPTURE = f"s3://{BUCKET}/capture/fraud/fraud-fraud/"
GROUND_TRUTH = f"s3://{BUCKET}/mlform/fraud/ground-truth/fraud-fraud/"
REQUESTS, PER_REQUEST, PER_FILE = 60, 10, 10
WINDOW_REQUESTS = 200 // PER_REQUEST


def right(i: int, labels: list[int]) -> list[int]:
    return labels


def half_wrong(i: int, labels: list[int]) -> list[int]:
    """Every other request of the current window labelled against its answers."""
    return [1 - y for y in labels] if i >= REQUESTS - WINDOW_REQUESTS and i % 2 else labels


@pytest.fixture
def labelling():
    """The ground truth sent for request i with true classes y; tests override it."""
    return right


def frame(rows: int, seed: int, amount_mean: float = 100.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.normal(amount_mean, 20.0, rows).round(3),
                         "age": rng.integers(18, 80, rows),
                         "country": rng.choice(["fr", "de", "es", "it"], rows),
                         "is_fraud": rng.integers(0, 2, rows)})


def requests(labelling=right) -> list[dict]:
    """60 requests of 10 rows: the first half like the reference, the second shifted, and
    answers (class probabilities) that shift with them and are right; `labelling` gives
    the ground truth sent back for them."""
    data = pd.concat([frame(300, seed=2), frame(300, seed=3, amount_mean=170.0)],
                     ignore_index=True)
    logged = []
    for i in range(REQUESTS):
        chunk = data.iloc[i * PER_REQUEST:(i + 1) * PER_REQUEST]
        labels = chunk["is_fraud"].tolist()
        confidence = 0.9 if i < REQUESTS // 2 else 0.6
        logged.append({"t": 1_000.0 + i, "id": f"r{i}", "features": FEATURES,
                       "instances": chunk[FEATURES].values.tolist(),
                       "predictions": [[1 - confidence, confidence] if y else
                                       [confidence, 1 - confidence] for y in labels],
                       "labels": labelling(i, labels)})
    return logged


def spec(endpoint: str, reference: str) -> dict:
    return {"endpoint": endpoint, "reference": reference, "features": FEATURES,
            "window_rows": 200, "min_rows": 50, "drift_share": 0.3, "schedule": "1h",
            "performance": {"metric": "accuracy", "min": 0.9}}


def tick(handler_or_provider, inputs: dict, outputs: dict):
    return handler_or_provider.tick(TickRequest(ResourceRef("drift", "monitor", "drift"),
                                                inputs, outputs, {}, {}, now=NOW))


@pytest.fixture
def local_tick(tmp_path, labelling):
    paths = LocalPaths(tmp_path / ".mlform" / "local")
    reference = paths.dataset("transactions", "abc123def456")
    reference.mkdir(parents=True)
    frame(2000, seed=1).to_csv(reference / "data.csv", index=False)
    endpoint = paths.endpoint("fraud")
    endpoint.mkdir(parents=True)
    with (endpoint / "requests.jsonl").open("w") as out, \
            (endpoint / "feedback.jsonl").open("w") as feedback:
        for request in requests(labelling):
            out.write(json.dumps({k: v for k, v in request.items() if k != "labels"}) + "\n")
            feedback.write(json.dumps({"t": request["t"], "id": request["id"],
                                       "labels": request["labels"]}) + "\n")
    handler = MonitorHandler(ProviderContext(stack="fraud", stack_dir=tmp_path,
                                             provider_name="local", config={},
                                             data_dir=paths.root))
    return tick(handler, spec("fraud", dataset_uri("transactions", "abc123def456")),
                {"last_evaluation": None})


def ground_truth_line(request: dict) -> str:
    """Even requests in mlform's feedback shape, odd ones as SageMaker Model Monitor's
    ground-truth record (CSV): both are read."""
    if int(request["id"][1:]) % 2 == 0:
        return json.dumps({"id": request["id"], "labels": request["labels"]})
    return json.dumps({"groundTruthData": {"data": ",".join(map(str, request["labels"])),
                                           "encoding": "CSV"},
                       "eventMetadata": {"eventId": request["id"]}, "eventVersion": "0"})


def upload_ground_truth(s3, uri: str, logged: list[dict]) -> None:
    bucket, prefix = uri[5:].split("/", 1)
    for first in range(0, REQUESTS, PER_FILE):
        s3.put_object(Bucket=bucket, Key=f"{prefix}2026/01/01/{first:02d}/labels.jsonl",
                      Body="\n".join(map(ground_truth_line,
                                         logged[first:first + PER_FILE])).encode())


@pytest.fixture
def aws_run(make_provider, client):
    """Tick an aws monitor over the captured `requests(labelling)`, with their ground
    truth uploaded under `labels_at` (None: none uploaded) and the monitor's aws
    `options`."""
    def run(labelling=right, labels_at: str | None = GROUND_TRUTH,
            options: dict | None = None):
        s3 = client("s3")
        logged = requests(labelling)
        capture(s3, logged)
        if labels_at:
            upload_ground_truth(s3, labels_at, logged)
        inputs = spec("fraud-fraud", f"s3://{BUCKET}/data/transactions.csv")
        if options:
            inputs["provider_options"] = {"aws": options}
        return tick(make_provider(), inputs, {"capture_uri": CAPTURE, "last_evaluation": None})
    return run


@pytest.fixture
def aws_tick(aws_run, labelling):
    return aws_run(labelling)


def capture(s3, logged: list[dict]) -> None:
    s3.put_object(Bucket=BUCKET, Key="data/transactions.csv",
                  Body=frame(2000, seed=1).to_csv(index=False).encode())
    for first in range(0, REQUESTS, PER_FILE):  # several files: the reader skips the middle
        lines = [json.dumps({
            "captureData": {
                "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                  "encoding": "JSON", "data": json.dumps(
                                      {"instances": r["instances"]})},
                "endpointOutput": {"observedContentType": "application/json",
                                   "mode": "OUTPUT", "encoding": "JSON", "data": json.dumps(
                                       {"predictions": r["predictions"]})}},
            "eventMetadata": {"eventId": r["id"],
                              "inferenceTime": "2026-01-01T00:00:00Z"},
            "eventVersion": "0"}) for r in logged[first:first + PER_FILE]]
        s3.put_object(Bucket=BUCKET, Key=f"capture/fraud/fraud-fraud/AllTraffic/2026/01/01/"
                                         f"{first:02d}/capture.jsonl",
                      Body="\n".join(lines).encode())


def stored(answer, read_s3=None) -> dict:
    where = answer.outputs["last_evaluation"]["evaluation"]
    if read_s3 is None:
        with open(where, encoding="utf-8") as text:
            return json.load(text)
    bucket, key = where[5:].split("/", 1)
    return json.loads(read_s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.mark.parametrize(("labelling", "breaches", "accuracy"), [
    pytest.param(right, ["drift"], 1.0, id="answers right: drift alone"),
    pytest.param(half_wrong, ["drift", "performance"], 0.5,
                 id="half the window answered wrong: performance breached too"),
])
def test_local_and_aws_evaluate_the_same_rows_alike(local_tick, aws_tick, client, breaches,
                                                    accuracy):
    assert local_tick.error is None and aws_tick.error is None, (local_tick.error,
                                                                 aws_tick.error)
    local, aws = stored(local_tick), stored(aws_tick, client("s3"))
    assert local.keys() == aws.keys()
    same = ("features", "drift", "output_drift", "rows", "settings", "breaches", "verdict",
            "batch_output", "monitor", "time", "t", "performance", "summary")
    assert {k: aws[k] for k in same} == {k: local[k] for k in same}
    assert local["breaches"] == breaches and local["output_drift"]["baseline_rows"] == 200
    assert local["performance"]["value"] == accuracy and local["performance"]["rows"] == 200
    assert local["rows"] == {"current": 200, "reference": 2000}
    assert local_tick.breach == aws_tick.breach
    local_last = local_tick.outputs["last_evaluation"]
    aws_last = aws_tick.outputs["last_evaluation"]
    assert local_last.keys() == aws_last.keys()
    assert aws_last["evaluation"].startswith(f"s3://{BUCKET}/")
    assert aws_last["report"].endswith("/monitors/drift/report.html")




def test_a_breached_performance_bound_on_aws_is_a_performance_breach(aws_run):
    answer = aws_run(half_wrong)
    assert answer.error is None, answer.error
    assert answer.outputs["last_evaluation"]["performance"] == {
        "metric": "accuracy", "value": 0.5, "min": 0.9, "max": None, "rows": 200,
        "passed": False, "note": ""}
    assert answer.outputs["last_evaluation"]["verdict"] == "performance"
    assert answer.breach["kind"] == "performance"
    assert answer.breach["values"]["accuracy"] == 0.5
    assert answer.breach["thresholds"]["accuracy"] == {"min": 0.9, "max": None}
    assert "accuracy 0.5000 (min 0.9)" in answer.events[0]


OTHER = f"s3://{BUCKET}/labels/fraud/"


@pytest.mark.parametrize(("labels_at", "option", "read_from", "rows"), [
    pytest.param(GROUND_TRUTH, None, GROUND_TRUTH, 200,
                 id="default prefix under the provider's bucket"),
    pytest.param(OTHER, OTHER, OTHER, 200, id="ground_truth_uri names another prefix"),
    pytest.param(GROUND_TRUTH, OTHER, OTHER, 0,
                 id="with ground_truth_uri the default prefix is not read"),
    pytest.param(None, None, GROUND_TRUTH, 0, id="nothing uploaded"),
])
def test_ground_truth_is_read_where_the_monitor_says(aws_run, labels_at, option, read_from,
                                                     rows):
    answer = aws_run(labels_at=labels_at,
                     options={"ground_truth_uri": option} if option else None)
    assert answer.error is None, answer.error
    assert answer.outputs["ground_truth_uri"] == read_from
    performance = answer.outputs["last_evaluation"]["performance"]
    if rows:
        assert performance == {"metric": "accuracy", "value": 1.0, "min": 0.9, "max": None,
                               "rows": rows, "passed": True, "note": ""}
    else:  # unscored, in the same shape, saying where the labels are expected
        assert performance == {"metric": "accuracy", "value": None, "min": 0.9, "max": None,
                               "rows": 0, "passed": None, "note": no_ground_truth(read_from)}
        assert f"accuracy not scored (no ground truth for the captured requests under " \
               f"{read_from}" in answer.events[0]
    assert answer.events[0].endswith(
        f"(report s3://{BUCKET}/mlform/fraud/monitors/drift/report.html)")


@pytest.mark.parametrize(("uri", "problems"), [
    pytest.param(OTHER, [], id="an s3 prefix"),
    pytest.param("labels/fraud/", ["provider_options.aws.ground_truth_uri: ground_truth_uri "
                                   "'labels/fraud/' is not an s3:// uri"], id="a relative path"),
])
def test_ground_truth_uri_must_be_an_s3_uri_at_plan(make_provider, uri, problems):
    from mlform.engine.provider import CheckRequest

    inputs = {**spec("fraud-fraud", f"s3://{BUCKET}/data/transactions.csv"),
              "provider_options": {"aws": {"ground_truth_uri": uri}}}
    answer = make_provider().check(CheckRequest(ResourceRef("drift", "monitor"), inputs))
    assert [str(p) for p in answer.problems] == problems
