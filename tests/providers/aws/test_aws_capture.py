"""SageMaker data capture read into the monitor's Traffic table (providers/aws/capture.py)."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import BUCKET
from mlform.providers.aws.capture import read_capture
from mlform.providers.aws.errors import AwsError

PREFIX = "capture/ep/"
URI = f"s3://{BUCKET}/{PREFIX}"


def line(event: str, instances: list, predictions: list | None = None,
         encoding: str = "JSON") -> str:
    def part(payload: dict) -> dict:
        data = json.dumps(payload)
        if encoding == "BASE64":
            data = base64.b64encode(data.encode()).decode()
        return {"observedContentType": "application/json", "encoding": encoding, "data": data}

    capture = {"endpointInput": part({"instances": instances})}
    if predictions is not None:
        capture["endpointOutput"] = part({"predictions": predictions})
    return json.dumps({"captureData": capture, "eventMetadata": {
        "eventId": event, "inferenceTime": "2026-01-01T00:00:10Z"}})


def put(s3, files: dict[str, list[str]]) -> None:
    for name, lines in files.items():
        s3.put_object(Bucket=BUCKET, Key=PREFIX + name, Body="\n".join(lines).encode())


@pytest.mark.parametrize(("lines", "amounts", "predictions"), [
    pytest.param([line("a", [{"amount": 1.0}], [0])], [1.0], [0], id="json"),
    pytest.param([line("a", [{"amount": 1.0}], [[0.2, 0.8]], encoding="BASE64")], [1.0],
                 [[0.2, 0.8]], id="base64"),
    pytest.param([line("a", [{"amount": 1.0}, {"amount": 2.0}])], [1.0, 2.0], [None, None],
                 id="no answer captured"),
    pytest.param([line("a", [{"amount": 1.0}], [1]), "", "{not json",
                  line("b", [{"amount": 2.0}], [0])], [1.0, 2.0], [1, 0],
                 id="blank and broken lines skipped"),
    pytest.param([line("a", [{"amount": 1.0}], [1]), line("a", [{"amount": 1.0}], [1])],
                 [1.0], [1], id="a request captured twice counts once"),
])
def test_capture_lines_become_rows(client, lines, amounts, predictions):
    s3 = client("s3")
    put(s3, {"f.jsonl": lines})
    traffic = read_capture(s3, URI, 100, None)
    assert traffic.features["amount"].tolist() == amounts
    assert traffic.predictions == predictions
    assert traffic.labels == [None] * len(amounts)
    assert traffic.times == [1767225610.0] * len(amounts)


def test_list_instances_take_the_monitor_features_or_are_refused(client):
    s3 = client("s3")
    put(s3, {"f.jsonl": [line("a", [[1.0, 30]], [1])]})
    assert read_capture(s3, URI, 100, ["amount", "age"]).features.to_dict("records") == \
        [{"amount": 1.0, "age": 30}]
    with pytest.raises(AwsError, match="set the monitor's `features`"):
        read_capture(s3, URI, 100, None)


def test_only_the_oldest_and_newest_files_a_window_needs_are_read(client):
    s3 = client("s3")
    put(s3, {f"{hour:02d}.jsonl": [line(f"r{hour}", [{"amount": float(hour)}] * 5, [0] * 5)]
             for hour in range(6)})
    read = []

    class Counting:
        def __getattr__(self, name):
            return getattr(s3, name)

        def get_object(self, **kwargs):
            read.append(kwargs["Key"].removeprefix(PREFIX))
            return s3.get_object(**kwargs)

    traffic = read_capture(Counting(), URI, 10, None)
    assert sorted(read) == ["00.jsonl", "01.jsonl", "04.jsonl", "05.jsonl"]
    assert traffic.features["amount"].tolist() == [0.0] * 5 + [1.0] * 5 + [4.0] * 5 + [5.0] * 5


def with_inference_id(capture_line: str, inference_id: str) -> str:
    record = json.loads(capture_line)
    record["eventMetadata"]["inferenceId"] = inference_id
    return json.dumps(record)


@pytest.mark.parametrize(("lines", "labels", "expected"), [
    pytest.param([line("a", [{"amount": 1.0}, {"amount": 2.0}], [0, 1])], {"a": [0, 1]},
                 [0, 1], id="labels joined by eventId"),
    pytest.param([with_inference_id(line("a", [{"amount": 1.0}], [1]), "order-7")],
                 {"order-7": [1], "a": [0]}, [1],
                 id="the caller's inferenceId wins over the eventId, as in Model Monitor"),
    pytest.param([line("a", [{"amount": 1.0}, {"amount": 2.0}], [0, 1]),
                  line("b", [{"amount": 3.0}], [1])], {"a": [1]}, [1, None, None],
                 id="unlabelled instances and requests are None"),
    pytest.param([line("a", [{"amount": 1.0}], [1])], {"a": [1, 0, 0]}, [1],
                 id="extra labels beyond the instances are dropped"),
])
def test_ground_truth_joins_the_captured_requests(client, lines, labels, expected):
    s3 = client("s3")
    put(s3, {"f.jsonl": lines})
    traffic = read_capture(s3, URI, 100, None, labels)
    assert traffic.labels == expected
    assert len(traffic.labels) == len(traffic.predictions)
