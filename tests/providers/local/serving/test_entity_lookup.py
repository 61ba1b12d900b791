"""An endpoint with a feature_view answers `{"entities": [...]}` from the view's online
store: the features it predicts from are the ones the store holds for each key."""

from __future__ import annotations

import httpx
import pytest
from mlform.engine.provider import CreateRequest, DeleteRequest, Progress, ResourceRef
from mlform.providers.local.features.definition import definition_of
from mlform.providers.local.features.online import write_online_store
from mlform.providers.local.paths import features_uri

from .conftest import handler_for, uri, with_registry

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory, artifacts):
    import pandas as pd

    data_dir = with_registry(tmp_path_factory.mktemp("lookup") / "local", artifacts)
    handler = handler_for(data_dir)
    definition = definition_of({"dataset": "local://datasets/d/1", "entity": "id",
                                "timestamp": "t", "features": ["a", "b", "c"]})
    table = pd.DataFrame({"id": [1, 2, 1], "t": pd.to_datetime(
        ["2026-11-20", "2026-11-21", "2026-11-22"], utc=True),
        "a": [1.0, 2.0, 3.0], "b": [0.0, 0.0, 0.0], "c": [5.0, 6.0, 7.0]})
    store = handler.paths.features("fv", "v1") / "online.sqlite"
    store.parent.mkdir(parents=True)
    write_online_store(store, table, definition, "v1")
    ref = ResourceRef("ep", "endpoint")
    created = handler.create(CreateRequest(ref, {
        "feature_view": features_uri("fv", "v1"),
        "variants": {"a": {"model": uri(2)}}}, "k"), Progress())
    assert created.error is None, created.error
    with httpx.Client(base_url=created.outputs["url"], timeout=10) as client:
        yield client
    handler.delete(DeleteRequest(ref, {}, created.outputs), Progress())


def test_entities_are_looked_up_and_predicted(served) -> None:
    r = served.post("/predict", json={"entities": [1, "2"]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == ["yes", "yes"]


@pytest.mark.parametrize("body, message", [
    ({"entities": [99]}, "no features for entity 99 in the online store"),
    ({"entities": []}, "'entities' must be a non-empty list of entity keys"),
    ({"entities": [{"id": 1}]}, "'entities' must be a non-empty list of entity keys"),
], ids=["unknown-entity", "empty", "not-keys"])
def test_bad_entities_are_a_400_naming_the_problem(served, body, message) -> None:
    r = served.post("/predict", json=body)
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_a_canary_on_a_new_feature_view_version_looks_up_its_own_features(
        tmp_path, artifacts) -> None:
    """A model retrained on a new view version (one more feature) rolls out while clients
    send entities: its requests read the new store, the champion's the old one (the canary
    read the old store before, failed every request and was rolled back)."""
    import threading

    import pandas as pd
    from mlform.engine.provider import UpdateRequest

    handler = handler_for(with_registry(tmp_path / "local", artifacts))
    table = pd.DataFrame({"id": [1, 2], "t": pd.to_datetime(["2026-11-20", "2026-11-21"],
                                                             utc=True),
                          "a": [1.0, 2.0], "b": [0.0, 0.0], "c": [5.0, 6.0], "d": [1.0, 1.0]})
    for version, features in (("v1", ["a", "b", "c"]), ("v2", ["a", "b", "c", "d"])):
        definition = definition_of({"dataset": "local://datasets/d/1", "entity": "id",
                                    "timestamp": "t", "features": features})
        store = handler.paths.features("fv", version) / "online.sqlite"
        store.parent.mkdir(parents=True)
        write_online_store(store, table, definition, version)
    ref = ResourceRef("ep", "endpoint")
    before = {"feature_view": features_uri("fv", "v1"), "variants": {"a": {"model": uri(1)}},
              "rollout": {"strategy": "canary", "steps": [50, 100], "wait": "200ms"},
              "rollback": {"min_requests": 5, "evidence_timeout": "30s"}}
    created = handler.create(CreateRequest(ref, before, "k"), Progress())
    assert created.error is None, created.error
    failures: list[str] = []
    stop = threading.Event()

    def clients() -> None:
        with httpx.Client(base_url=created.outputs["url"], timeout=10) as client:
            while not stop.is_set():
                r = client.post("/predict", json={"entities": [1, 2]})
                if r.status_code != 200:
                    failures.append(r.text)
                stop.wait(0.02)

    sender = threading.Thread(target=clients)
    sender.start()
    try:
        after = {**before, "feature_view": features_uri("fv", "v2"),
                 "variants": {"a": {"model": uri(3)}}}
        updated = handler.update(UpdateRequest(ref, before, created.outputs, after), Progress())
    finally:
        stop.set()
        sender.join()
        handler.delete(DeleteRequest(ref, {}, created.outputs), Progress())
    assert updated.error is None, updated.error
    assert failures == []
