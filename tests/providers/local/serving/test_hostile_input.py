"""Hostile HTTP input against a real server: oversized bodies and heads, slow and idle
connections, a large prediction beside /health, input that once answered 500, and
JSON error bodies for every refusal."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from mlform.engine.provider import CreateRequest, DeleteRequest, Progress, ResourceRef
from mlform.providers.local.paths import LocalPaths, model_uri
from mlform.providers.local.serving import process

from .conftest import FEATURES, handler_for, uri, with_registry

pytestmark = pytest.mark.e2e

LIMITS = {"max_body_bytes": "1MiB", "max_header_bytes": "4KiB", "header_timeout": "1s",
          "body_timeout": "1s", "idle_timeout": "1s"}


def _slow_model(directory: Path) -> None:
    """A wide network: tens of thousands of rows take it seconds to score."""
    import torch
    from mlform.ml.artifact import save_model

    width = 1024
    module = torch.nn.Sequential(
        torch.nn.Linear(3, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
        torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, 2))
    save_model(directory, module, {"task": "classification", "features": FEATURES,
                                   "classes": ["no", "yes"], "target": "label"})


@pytest.fixture(scope="module")
def server(tmp_path_factory, artifacts):
    """(url, endpoint directory): the endpoint serves version 1 under small `LIMITS`."""
    data_dir = with_registry(tmp_path_factory.mktemp("hostile") / "local", artifacts)
    handler = handler_for(data_dir)
    ref = ResourceRef("ep", "endpoint")
    created = handler.create(CreateRequest(ref, {
        "variants": {"a": {"model": uri(1)}}, "limits": LIMITS}, "k"), Progress())
    assert created.error is None, created.error
    yield created.outputs["url"], handler.paths.endpoint("ep")
    handler.delete(DeleteRequest(ref, {}, created.outputs), Progress())


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _raw(url: str, data: bytes, read_for: float = 5.0) -> tuple[bytes, float]:
    """Send `data` on a new connection and read until the server closes it: (what it
    answered, seconds until it closed)."""
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=read_for) as sock:
        start = time.monotonic()
        sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return received, float("inf")
            if not chunk:
                return received, time.monotonic() - start
            received += chunk


def _json_answer(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


# --- sizes ---------------------------------------------------------------------------

def test_a_body_over_the_limit_is_a_413_before_it_is_read(server) -> None:
    url, _ = server
    r = httpx.post(f"{url}/predict", content=b"x" * (2 * 2**20),
                   headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 413
    assert r.json()["error"].startswith("the request body is larger than 1048576 bytes "
                                        "(the endpoint's limits.max_body_bytes)")
    assert r.headers["connection"] == "close"


def test_a_chunked_body_over_the_limit_is_a_413(server) -> None:
    url, _ = server

    def chunks():
        for _ in range(40):
            yield b"[" * 65536

    for route in ("/predict", "/feedback"):
        r = httpx.post(f"{url}{route}", content=chunks(), timeout=10)
        assert r.status_code == 413, (route, r.text)
        assert "limits.max_body_bytes" in r.json()["error"]


def test_headers_over_the_limit_are_a_431_in_json(server) -> None:
    url, _ = server
    answer, closed_after = _raw(url, b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: "
                                + b"a" * 8192 + b"\r\n\r\n")
    status, body = _json_answer(answer)
    assert status == 431
    assert body == {"error": "the request line and headers are larger than 4096 bytes "
                             "(the endpoint's limits.max_header_bytes)"}
    assert closed_after < 5


# --- time ----------------------------------------------------------------------------

def test_half_a_request_is_answered_408_and_closed_while_others_are_served(server) -> None:
    url, _ = server
    result = {}

    def slowloris() -> None:
        result["raw"], result["closed_after"] = _raw(
            url, b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: app", read_for=10)

    attacker = threading.Thread(target=slowloris)
    attacker.start()
    time.sleep(0.3)
    assert httpx.get(f"{url}/health", timeout=2).status_code == 200  # still serving
    attacker.join()
    assert 0.5 < result["closed_after"] < 3, result
    status, body = _json_answer(result["raw"])
    assert status == 408
    assert "did not arrive within 1s (the endpoint's limits.header_timeout)" in body["error"]


def test_a_connection_that_sends_nothing_is_closed(server) -> None:
    url, _ = server
    answer, closed_after = _raw(url, b"", read_for=10)
    assert answer == b"" and closed_after < 3


def test_a_body_that_stops_arriving_is_a_408(server) -> None:
    url, _ = server
    answer, closed_after = _raw(url, b"POST /predict HTTP/1.1\r\nhost: x\r\n"
                                     b"content-length: 100\r\n\r\n{\"instances\"", read_for=10)
    status, body = _json_answer(answer)
    assert status == 408
    assert "limits.body_timeout" in body["error"]
    assert closed_after < 3


def test_an_idle_kept_alive_connection_is_closed(server) -> None:
    url, _ = server
    answer, closed_after = _raw(url, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n", read_for=10)
    assert answer.startswith(b"HTTP/1.1 200")
    assert closed_after < 3


def test_health_answers_while_a_large_prediction_is_scored(data_dir, endpoints) -> None:
    _slow_model(LocalPaths(data_dir).model_version("slow", 1) / "artifact")
    created = endpoints("slow", {"variants": {"slow": {"model": model_uri("slow", 1)}}})
    assert created.error is None, created.error
    url = created.outputs["url"]
    body = json.dumps({"instances": [[1.0, 2.0, 3.0]] * 40_000}).encode()
    assert len(body) < 2**20
    done = threading.Event()
    answer = {}

    def big() -> None:
        start = time.monotonic()
        answer["r"] = httpx.post(f"{url}/predict", content=body, timeout=120,
                                 headers={"content-type": "application/json"})
        answer["seconds"] = time.monotonic() - start
        done.set()

    thread = threading.Thread(target=big)
    thread.start()
    time.sleep(0.3)
    latencies = []
    while not done.is_set():
        start = time.monotonic()
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        latencies.append(time.monotonic() - start)
        time.sleep(0.05)
    thread.join()
    assert answer["r"].status_code == 200
    assert answer["seconds"] > 1.0, "the large prediction was too quick to tell"
    assert latencies and max(latencies) < 0.5, latencies


# --- client-caused errors: 400, never 500 ------------------------------------------------

@pytest.mark.parametrize("content, message", [
    pytest.param(b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                 "nests arrays or objects too deeply", id="deep nesting"),
    pytest.param(b'{"instances": [[' + b"9" * 5000 + b', 1, 2]]}',
                 "the body must be a JSON object: Exceeds the limit", id="a 5000-digit integer"),
    pytest.param(b'{"instances": [[1' + b"0" * 400 + b', 1, 2]]}',
                 "cannot predict these instances", id="an integer beyond float"),
    pytest.param(b'{"instances": [[1, 2, "\\ud800"]]}', "lone UTF-16 surrogate",
                 id="a lone surrogate"),
    pytest.param(b'{"instances": [[1, 2, "\xed\xa0\x80"]]}', "lone UTF-16 surrogate",
                 id="a surrogate in UTF-8"),
    pytest.param(b'{"instances": [[1, 2, 3]]}\xff', "the body must be a JSON object",
                 id="not UTF-8"),
])
def test_hostile_predict_bodies_are_400(server, content: bytes, message: str) -> None:
    url, _ = server
    r = httpx.post(f"{url}/predict", content=content, timeout=10,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("since", ["nan", "inf", "-inf", "1e999", "abc"])
def test_a_stats_window_that_is_not_a_time_is_400(server, since: str) -> None:
    url, directory = server
    r = httpx.get(f"{url}/-/stats", params={"since": since}, timeout=5,
                  headers={"authorization": f"Bearer {process.read_token(directory)}"})
    assert r.status_code == 400
    assert r.json() == {"error": "'since' must be a unix time in seconds (a finite number)"}


def test_feedback_is_written_only_when_it_is_accepted(server) -> None:
    url, directory = server
    bad = httpx.post(f"{url}/feedback", content=b'{"id": "\\ud800x", "labels": ["yes"]}',
                     timeout=5)
    assert bad.status_code == 400
    assert "lone UTF-16 surrogate" in bad.json()["error"]
    good = httpx.post(f"{url}/feedback", json={"id": "after", "labels": ["no"]}, timeout=5)
    assert good.status_code == 202
    log = directory / "feedback.jsonl"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not log.exists() or "after" not in log.read_text()):
        time.sleep(0.1)
    ids = [json.loads(line)["id"] for line in log.read_text().splitlines()]
    assert ids == ["after"]


# --- every error body is JSON ----------------------------------------------------------

@pytest.mark.parametrize("method, route, status", [
    ("GET", "/nowhere", 404), ("POST", "/health", 405), ("DELETE", "/feedback", 405),
    ("PUT", "/predict", 405),
])
def test_routing_errors_are_json(server, method: str, route: str, status: int) -> None:
    url, _ = server
    r = httpx.request(method, f"{url}{route}", timeout=5)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"error"}


def test_a_request_that_is_not_http_is_a_400_in_json(server) -> None:
    url, _ = server
    answer, _ = _raw(url, b"NOT HTTP AT ALL\r\n\r\n")
    status, body = _json_answer(answer)
    assert status == 400
    assert body == {"error": "invalid HTTP request: it could not be parsed as HTTP/1.1"}
