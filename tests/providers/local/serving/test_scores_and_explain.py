"""Scores and explanations over real HTTP: `"return": "probabilities"` on /predict, the
request log keeping them for monitors, and `POST /explain`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import torch
from mlform.engine.provider import CreateRequest, DeleteRequest, Progress, ResourceRef
from mlform.ml.artifact import save_model
from mlform.providers.local.paths import LocalPaths, model_uri
from mlform.providers.local.serving import process

from .conftest import FEATURES, handler_for, with_registry

CLASSES = ["low", "mid", "high"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, artifacts) -> Path:
    """One registry and one server for the module's tests."""
    return with_registry(tmp_path_factory.mktemp("scores") / "local", artifacts)


@pytest.fixture(scope="module")
def scorer(data_dir: Path):
    """An endpoint serving a three-class linear model with weights on every feature."""
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 3)
    prep = {f: {"kind": "numeric", "mean": 1.0, "std": 2.0} for f in FEATURES}
    save_model(LocalPaths(data_dir).model_version("tri", 1) / "artifact", module,
               {"task": "classification", "features": FEATURES, "classes": CLASSES,
                "target": "label", "preprocessing": prep})
    handler = handler_for(data_dir)
    created = handler.create(CreateRequest(
        ResourceRef("ep", "endpoint"), {"variants": {"a": {"model": model_uri("tri", 1)}},
                                        "logging": {"sample_rate": 1.0}}, "key-ep"),
        Progress())
    try:
        assert created.error is None, created.error
        with httpx.Client(base_url=created.outputs["url"], timeout=10) as client:
            yield client
    finally:
        handler.delete(DeleteRequest(ResourceRef("ep", "endpoint"), {}, {}), Progress())
        process.stop_all(handler.paths.endpoint("ep"))


def _logged(data_dir: Path, rid: str) -> dict:
    log = LocalPaths(data_dir).endpoint("ep") / "requests.jsonl"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if log.exists():
            for line in log.read_text().splitlines():
                record = json.loads(line)
                if record["id"] == rid:
                    return record
        time.sleep(0.1)
    raise AssertionError(f"request {rid} was not logged")


@pytest.mark.e2e
def test_probabilities_sum_to_one_match_the_labels_and_are_logged(scorer, data_dir) -> None:
    instances = [[0.0, 1.0, 2.0], [5.0, -3.0, 0.5], [-4.0, 4.0, 9.0], [1, 1, 1]]
    plain = scorer.post("/predict", json={"instances": instances})
    assert plain.status_code == 200 and set(plain.json()) == {"predictions", "variant", "id"}

    r = scorer.post("/predict", json={"instances": instances, "return": "probabilities"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["classes"] == CLASSES
    assert answer["predictions"] == plain.json()["predictions"]
    for label, probabilities in zip(answer["predictions"], answer["probabilities"],
                                    strict=True):
        assert len(probabilities) == 3 and all(0 <= p <= 1 for p in probabilities)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-9)
        assert label == CLASSES[probabilities.index(max(probabilities))]
    assert len(set(answer["predictions"])) > 1  # the instances do not all get one class

    logged = _logged(data_dir, answer["id"])
    assert logged["predictions"] == answer["predictions"]
    assert logged["scores"] == answer["probabilities"]
    assert "scores" not in _logged(data_dir, plain.json()["id"])

    wrong = scorer.post("/predict", json={"instances": instances, "return": "logits"})
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "'return' must be one of 'labels', 'probabilities', "
                                     "not 'logits'"}


@pytest.mark.e2e
def test_explain_answers_over_http(scorer) -> None:
    instance = [3.0, -1.0, 4.0]
    r = scorer.post("/explain", json={"instances": [instance, {"a": 1.0, "b": 1.0, "c": 1.0}]})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["method"], answer["baseline"], answer["variant"]) == \
        ("occlusion", "training means", "a")
    first, at_means = answer["explanations"]
    predicted = scorer.post("/predict", json={"instances": [instance],
                                              "return": "probabilities"}).json()
    assert first["prediction"] == predicted["predictions"][0]
    assert first["score"] == pytest.approx(max(predicted["probabilities"][0]))
    assert set(first["attributions"]) == set(FEATURES)
    assert any(abs(v) > 1e-3 for v in first["attributions"].values())
    # every feature at its training mean already: occluding it changes nothing
    assert at_means["attributions"] == {f: 0.0 for f in FEATURES}

    bad = scorer.post("/explain", json={"instances": [[1.0, 2.0]]})
    assert bad.status_code == 400
    assert bad.json()["error"] == ("variant 'a' cannot explain these instances: instance 0 "
                                   "has 2 values; expected 3 (a, b, c)")
    too_many = scorer.post("/explain", json={"instances": [instance] * 101})
    assert too_many.status_code == 400 and "at most 100 instances" in too_many.json()["error"]
