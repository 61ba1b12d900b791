"""The same logged rows give the same monitor evaluation on local and on aws: one window
of traffic written as the local endpoint logs it (requests.jsonl, feedback.jsonl) and as
SageMaker captures it (capture files in S3), evaluated by each provider's monitor."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import BUCKET
from mlform.engine.provider import ProviderContext, ResourceRef, TickRequest
from mlform.providers.aws.monitor import NO_FEEDBACK
from mlform.providers.local.monitoring.handler import MonitorHandler
from mlform.providers.local.paths import LocalPaths, dataset_uri

FEATURES = ["amount", "age", "country"]
NOW = 2_000_000.0
CAPTURE = f"s3://{BUCKET}/capture/fraud/fraud-fraud/"
REQUESTS, PER_REQUEST, PER_FILE = 60, 10, 10


def frame(rows: int, seed: int, amount_mean: float = 100.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"amount": rng.normal(amount_mean, 20.0, rows).round(3),
                         "age": rng.integers(18, 80, rows),
                         "country": rng.choice(["fr", "de", "es", "it"], rows),
                         "is_fraud": rng.integers(0, 2, rows)})


def requests() -> list[dict]:
    """60 requests of 10 rows: the first half like the reference, the second shifted, and
    answers (class probabilities) that shift with them and are always right."""
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
                       "labels": labels})
    return logged


def spec(endpoint: str, reference: str) -> dict:
    return {"endpoint": endpoint, "reference": reference, "features": FEATURES,
            "window_rows": 200, "min_rows": 50, "drift_share": 0.3, "schedule": "1h",
            "performance": {"metric": "accuracy", "min": 0.9}}


def tick(handler_or_provider, inputs: dict, outputs: dict):
    return handler_or_provider.tick(TickRequest(ResourceRef("drift", "monitor", "drift"),
                                                inputs, outputs, {}, {}, now=NOW))


@pytest.fixture
def local_tick(tmp_path):
    paths = LocalPaths(tmp_path / ".mlform" / "local")
    reference = paths.dataset("transactions", "abc123def456")
    reference.mkdir(parents=True)
    frame(2000, seed=1).to_csv(reference / "data.csv", index=False)
    endpoint = paths.endpoint("fraud")
    endpoint.mkdir(parents=True)
    with (endpoint / "requests.jsonl").open("w") as out, \
            (endpoint / "feedback.jsonl").open("w") as feedback:
        for request in requests():
            out.write(json.dumps({k: v for k, v in request.items() if k != "labels"}) + "\n")
            feedback.write(json.dumps({"t": request["t"], "id": request["id"],
                                       "labels": request["labels"]}) + "\n")
    handler = MonitorHandler(ProviderContext(stack="fraud", stack_dir=tmp_path,
                                             provider_name="local", config={},
                                             data_dir=paths.root))
    return tick(handler, spec("fraud", dataset_uri("transactions", "abc123def456")),
                {"last_evaluation": None})


@pytest.fixture
def aws_tick(make_provider, client):
    s3 = client("s3")
    s3.put_object(Bucket=BUCKET, Key="data/transactions.csv",
                  Body=frame(2000, seed=1).to_csv(index=False).encode())
    logged = requests()
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
    inputs = spec("fraud-fraud", f"s3://{BUCKET}/data/transactions.csv")
    return tick(make_provider(), inputs, {"capture_uri": CAPTURE, "last_evaluation": None})


def stored(answer, read_s3=None) -> dict:
    where = answer.outputs["last_evaluation"]["evaluation"]
    if read_s3 is None:
        with open(where, encoding="utf-8") as text:
            return json.load(text)
    bucket, key = where[5:].split("/", 1)
    return json.loads(read_s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_local_and_aws_evaluate_the_same_rows_alike(local_tick, aws_tick, client):
    assert local_tick.error is None and aws_tick.error is None, (local_tick.error,
                                                                 aws_tick.error)
    local, aws = stored(local_tick), stored(aws_tick, client("s3"))
    assert local.keys() == aws.keys()
    same = ("features", "drift", "output_drift", "rows", "settings", "breaches", "verdict",
            "batch_output", "monitor", "time", "t")
    assert {k: aws[k] for k in same} == {k: local[k] for k in same}
    assert local["verdict"] == "drift" and local["output_drift"]["baseline_rows"] == 200
    assert local["rows"] == {"current": 200, "reference": 2000}
    assert local_tick.breach == aws_tick.breach
    local_last = local_tick.outputs["last_evaluation"]
    aws_last = aws_tick.outputs["last_evaluation"]
    assert local_last.keys() == aws_last.keys()
    assert aws_last["evaluation"].startswith(f"s3://{BUCKET}/")
    assert aws_last["report"].endswith("/monitors/drift/report.html")


def test_aws_reports_performance_unscored_in_the_same_shape(local_tick, aws_tick):
    local = local_tick.outputs["last_evaluation"]["performance"]
    aws = aws_tick.outputs["last_evaluation"]["performance"]
    assert local == {"metric": "accuracy", "value": 1.0, "min": 0.9, "max": None,
                     "rows": 200, "passed": True, "note": ""}
    assert aws == {"metric": "accuracy", "value": None, "min": 0.9, "max": None,
                   "rows": 0, "passed": None, "note": NO_FEEDBACK}
    assert aws_tick.events[0].endswith(
        f"(report s3://{BUCKET}/mlform/fraud/monitors/drift/report.html)")
    assert "accuracy not scored (no feedback" in aws_tick.events[0]
