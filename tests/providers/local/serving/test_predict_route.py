"""The prediction route: answers that need a particular model, and its handling of
request bodies and ids."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import torch
from mlform.ml.artifact import save_model
from mlform.providers.local.paths import LocalPaths, model_uri
from mlform.providers.local.serving.app import RequestIds, _read_body

from .conftest import FEATURES, uri


def _serving(endpoints, inputs: dict) -> httpx.Client:
    created = endpoints("ep", inputs)
    assert created.error is None, created.error
    return httpx.Client(base_url=created.outputs["url"], timeout=10)


@pytest.mark.e2e
def test_a_prediction_that_is_not_json_is_a_500_with_a_message(data_dir: Path,
                                                               endpoints) -> None:
    """A regression network that answers NaN: JSON has no NaN, so the answer is an
    error that says so rather than a body no client can parse."""
    module = torch.nn.Linear(3, 1)
    with torch.no_grad():
        module.bias.fill_(float("nan"))
    save_model(LocalPaths(data_dir).model_version("nan", 1) / "artifact", module,
               {"task": "regression", "features": FEATURES, "target": "y"})
    with _serving(endpoints, {"variants": {"a": {"model": model_uri("nan", 1)}}}) as client:
        r = client.post("/predict", json={"instances": [[1, 2, 3]]})
        assert r.status_code == 500
        assert r.json()["error"].startswith(
            "variant 'a' failed: its predictions are not JSON: ValueError: Out of range float")
        # the variant's failure: an error a rollout counts against it
        metrics = client.get("/metrics").text
        assert f'mlform_endpoint_errors_total{{model="{model_uri("nan", 1)}",variant="a"}} 1.0' \
            in metrics


@pytest.mark.e2e
def test_predict_takes_only_post_and_other_routes_still_answer(endpoints) -> None:
    with _serving(endpoints, {"variants": {"a": {"model": uri(1)}}}) as client:
        wrong = client.get("/predict")
        assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
        assert wrong.json() == {"error": "send POST /predict"}
        r = client.post("/predict", json={"instances": [[1, 2, 3]]})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["content-length"]) == len(r.content)
        assert r.json()["predictions"] == ["no"]
        assert client.get("/metrics").status_code == 200


def test_a_body_sent_in_pieces_is_read_whole() -> None:
    messages = iter([{"type": "http.request", "body": b'{"inst', "more_body": True},
                     {"type": "http.request", "body": b'ances": [[1]]}', "more_body": False}])

    async def receive() -> dict:
        return next(messages)

    assert asyncio.run(_read_body(receive)) == b'{"instances": [[1]]}'


def test_a_client_gone_before_its_body_gets_no_answer() -> None:
    async def receive() -> dict:
        return {"type": "http.disconnect"}

    assert asyncio.run(_read_body(receive)) is None


def test_request_ids_are_unique_within_and_across_servers() -> None:
    first, second = RequestIds(), RequestIds()
    ids = [first.next() for _ in range(1000)] + [second.next() for _ in range(1000)]
    assert len(set(ids)) == 2000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


