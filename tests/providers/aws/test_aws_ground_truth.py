"""Ground-truth labels uploaded to S3 read by request id (providers/aws/ground_truth.py)."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import BUCKET
from mlform.providers.aws.ground_truth import labelled, read_ground_truth

URI = f"s3://{BUCKET}/ground-truth/ep/"


def sagemaker(data: str, encoding: str = "CSV", **meta: str) -> str:
    return json.dumps({"groundTruthData": {"data": data, "encoding": encoding},
                       "eventMetadata": meta or {"eventId": "e1"}, "eventVersion": "0"})


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param('{"id": "r1", "labels": [1, 0]}', ("r1", [1, 0]),
                 id="mlform feedback shape"),
    pytest.param('{"t": 5, "id": 7, "labels": ["fr"]}', ("7", ["fr"]),
                 id="feedback with a time and a numeric id"),
    pytest.param(sagemaker("1"), ("e1", [1]), id="model monitor csv"),
    pytest.param(sagemaker("1,0,2.5,fr"), ("e1", [1, 0, 2.5, "fr"]),
                 id="model monitor csv of several instances"),
    pytest.param(sagemaker("[1, 0]", "JSON"), ("e1", [1, 0]), id="model monitor json list"),
    pytest.param(sagemaker('{"labels": [0]}', "JSON"), ("e1", [0]),
                 id="model monitor json labels"),
    pytest.param(sagemaker("3.5", "JSON"), ("e1", [3.5]), id="model monitor json value"),
    pytest.param(sagemaker(base64.b64encode(b"[1]").decode(), "BASE64"), ("e1", [1]),
                 id="model monitor base64 json"),
    pytest.param(sagemaker(base64.b64encode(b"0").decode(), "BASE64"), ("e1", [0]),
                 id="model monitor base64 of one value"),
    pytest.param(sagemaker("1", inferenceId="order-7", eventId="e1"), ("order-7", [1]),
                 id="inferenceId names the request when given"),
    pytest.param("", None, id="blank"),
    pytest.param('{"id": "r1", "lab', None, id="half written"),
    pytest.param('{"id": "r1", "labels": 1}', None, id="labels not a list"),
    pytest.param('{"labels": [1]}', None, id="no id"),
    pytest.param(sagemaker("[1", "JSON"), None, id="broken json data"),
    pytest.param(sagemaker("not base64!", "BASE64"), None, id="broken base64 data"),
    pytest.param("[1, 2]", None, id="not an object"),
])
def test_a_line_names_a_request_and_its_labels(line, expected):
    assert labelled(line) == expected


def test_objects_are_read_oldest_first_so_a_later_label_wins(client):
    s3 = client("s3")
    s3.put_object(Bucket=BUCKET, Key="ground-truth/ep/2026/01/01/00/a.jsonl",
                  Body=b'{"id": "r1", "labels": [0]}\n{"id": "r2", "labels": [1]}\n')
    s3.put_object(Bucket=BUCKET, Key="ground-truth/ep/2026/01/01/01/b.jsonl",
                  Body=(sagemaker("1", eventId="r1") + "\n{broken").encode())
    s3.put_object(Bucket=BUCKET, Key="ground-truth/other/a.jsonl",
                  Body=b'{"id": "r3", "labels": [1]}\n')
    assert read_ground_truth(s3, URI) == {"r1": [1], "r2": [1]}


def test_an_empty_prefix_has_no_labels(client):
    assert read_ground_truth(client("s3"), URI) == {}
