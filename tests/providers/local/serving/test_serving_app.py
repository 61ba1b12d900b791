"""The public routes of a real server, started by the handler and reached over HTTP."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from mlform.engine.provider import CreateRequest, DeleteRequest, Progress, ResourceRef

from .conftest import FEATURES, handler_for, uri, with_registry

pytestmark = pytest.mark.e2e

ANSWER = {"a": "no", "b": "yes"}
"""Variant a serves version 1 (always "no"), b serves version 2 (always "yes")."""


@pytest.fixture(scope="module")
def served(tmp_path_factory, artifacts):
    """One endpoint for the module: a (weight 75), b (weight 25), and shadow s."""
    data_dir = with_registry(tmp_path_factory.mktemp("app") / "local", artifacts)
    handler = handler_for(data_dir)
    ref = ResourceRef("ep", "endpoint")
    created = handler.create(CreateRequest(ref, {"variants": {
        "a": {"model": uri(1), "weight": 75},
        "b": {"model": uri(2), "weight": 25},
        "s": {"model": uri(2), "shadow": True},
    }}, "k"), Progress())
    assert created.error is None, created.error
    with httpx.Client(base_url=created.outputs["url"], timeout=10) as client:
        yield client, handler.paths.endpoint("ep")
    handler.delete(DeleteRequest(ref, {}, created.outputs), Progress())


def logged(path: Path, until, timeout: float = 5.0) -> list[dict]:
    """The rows of a JSON-lines log once `until(rows)` holds (the writer flushes every 0.5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [json.loads(line) for line in path.read_text().splitlines()] \
            if path.exists() else []
        if until(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_predict_answers_predictions_variant_and_id(served) -> None:
    client, _ = served
    r = client.post("/predict", json={"instances": [[1, 2, 3], [4, 5, 6]]})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"predictions", "variant", "id"}
    assert body["predictions"] == [ANSWER[body["variant"]]] * 2
    assert len(body["id"]) == 32


def test_predict_accepts_objects_keyed_by_feature_name(served) -> None:
    client, _ = served
    r = client.post("/predict", json={"instances": [{"c": 3, "b": 2, "a": 1, "other": "x"}]})
    assert r.status_code == 200
    assert r.json()["predictions"] == [ANSWER[r.json()["variant"]]]


@pytest.mark.parametrize("content, message", [
    pytest.param(b"{not json", "the body must be a JSON object", id="not JSON"),
    pytest.param(b"[[1, 2, 3]]", "the body must be a JSON object", id="a bare list"),
    pytest.param(b'{"rows": [[1, 2, 3]]}', "'instances' must be a non-empty list", id="no instances"),
    pytest.param(b'{"instances": []}', "'instances' must be a non-empty list", id="empty instances"),
    pytest.param(b'{"instances": "1,2,3"}', "'instances' must be a non-empty list", id="a string"),
    pytest.param(b'{"instances": [[1, 2]]}', "instance 0 has 2 values; expected 3", id="too few values"),
    pytest.param(b'{"instances": [[1, "x", 3]]}', "feature 'b' is numeric", id="not a number"),
    pytest.param(b'{"instances": [{"a": 1, "b": 2}]}', "instance 0 lacks feature(s) 'c'",
                 id="missing feature"),
    pytest.param(b'{"instances": [[1, 2, 3], {"a": 1}]}', "all lists or all objects",
                 id="mixed rows"),
])
def test_bad_input_is_a_400_with_a_message(served, content: bytes, message: str) -> None:
    client, _ = served
    r = client.post("/predict", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert message in r.json()["error"]
    assert "Traceback" not in r.text


def test_health_lists_the_variants_and_their_versions(served) -> None:
    client, _ = served
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["variants"] == {
        "a": {"model": uri(1), "weight": 75, "shadow": False},
        "b": {"model": uri(2), "weight": 25, "shadow": False},
        "s": {"model": uri(2), "weight": 100, "shadow": True},
    }
    assert body["traffic"] == {"a": 75.0, "b": 25.0}


def test_metrics_count_requests_per_variant(served) -> None:
    client, _ = served
    for _ in range(20):
        client.post("/predict", json={"instances": [[1, 2, 3]]})
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    requests = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
                for line in lines if line.startswith("mlform_endpoint_requests_total{")}
    assert sum(requests.values()) >= 20
    assert f'model="{uri(1)}",variant="a"' in requests
    assert any(line.startswith('mlform_endpoint_request_latency_seconds_bucket{le="0.005"')
               for line in lines)
    assert any(line.startswith("mlform_endpoint_shadow_requests_total{") for line in lines)
    assert 'mlform_endpoint_traffic_percent{variant="a"} 75.0' in lines


def test_weighted_routing_follows_the_weights(served) -> None:
    client, _ = served
    variants = Counter(client.post("/predict", json={"instances": [[0, 0, 0]]}).json()["variant"]
                       for _ in range(400))
    assert set(variants) == {"a", "b"}
    assert variants["a"] / 400 == pytest.approx(0.75, abs=0.08)


def test_the_request_log_holds_each_request_and_its_shadow_copy(served) -> None:
    client, directory = served
    ids = [client.post("/predict", json={"instances": [{"a": 1, "b": 2, "c": 3}]}).json()["id"]
           for _ in range(5)]
    rows = logged(directory / "requests.jsonl",
                  lambda rows: sum(r["id"] in ids for r in rows) == 10)
    mine = [r for r in rows if r["id"] in ids]
    assert Counter(r["variant"] == "s" for r in mine) == {True: 5, False: 5}
    for row in mine:
        assert set(row) == {"t", "id", "variant", "model", "features", "instances",
                            "predictions"}
        assert row["features"] == FEATURES
        assert row["instances"] == [[1, 2, 3]]
    shadow = [r for r in mine if r["variant"] == "s"]
    assert {r["model"] for r in shadow} == {uri(2)}
    assert {r["predictions"][0] for r in shadow} == {"yes"}


def test_feedback_is_logged_with_its_request_id(served) -> None:
    client, directory = served
    rid = client.post("/predict", json={"instances": [[1, 2, 3]]}).json()["id"]
    r = client.post("/feedback", json={"id": rid, "labels": ["yes"]})
    assert r.status_code == 202
    rows = logged(directory / "feedback.jsonl", lambda rows: any(x["id"] == rid for x in rows))
    [row] = [x for x in rows if x["id"] == rid]
    assert set(row) == {"t", "id", "labels"} and row["labels"] == ["yes"]


def test_a_business_outcome_is_logged_with_or_without_labels(served) -> None:
    client, directory = served
    rid = client.post("/predict", json={"instances": [[1, 2, 3]]}).json()["id"]
    assert client.post("/feedback", json={"id": rid, "outcome": 12.5}).status_code == 202
    rows = logged(directory / "feedback.jsonl", lambda rows: any(x["id"] == rid for x in rows))
    [row] = [x for x in rows if x["id"] == rid]
    assert set(row) == {"t", "id", "outcome"} and row["outcome"] == 12.5


@pytest.mark.parametrize("body, message", [
    pytest.param({"labels": [1]}, "'id' must be", id="no id"),
    pytest.param({"id": "abc", "labels": []}, "'labels' must be a non-empty list", id="no labels"),
    pytest.param({"id": "abc"}, "'labels' must be a non-empty list", id="neither"),
    pytest.param({"id": "abc", "outcome": "high"}, "'outcome' must be a finite number",
                 id="outcome not a number"),
    pytest.param({"id": "abc", "outcome": True}, "'outcome' must be a finite number",
                 id="outcome a boolean"),
])
def test_bad_feedback_is_a_400(served, body: dict, message: str) -> None:
    client, _ = served
    r = client.post("/feedback", json=body)
    assert r.status_code == 400 and message in r.json()["error"]


@pytest.mark.parametrize("method, route", [("GET", "/-/config"), ("POST", "/-/config"),
                                           ("GET", "/-/stats")])
def test_control_routes_need_the_servers_token(served, method: str, route: str) -> None:
    client, directory = served
    token = (directory / "control.token").read_text()
    for headers in ({}, {"authorization": "Bearer not-the-token"},
                    {"authorization": token}):
        r = client.request(method, route, headers=headers, content=b"{}")
        assert r.status_code == 401, headers
        assert "control.token" in r.json()["error"]
    r = client.get(route, headers={"authorization": f"Bearer {token}"}) if method == "GET" \
        else client.post(route, headers={"authorization": f"Bearer {token}"}, content=b"{}")
    assert r.status_code == (200 if method == "GET" else 400)


def test_the_token_is_readable_by_its_owner_only(served) -> None:
    _, directory = served
    assert (directory / "control.token").stat().st_mode & 0o777 == 0o600
    assert len((directory / "control.token").read_text()) >= 40
