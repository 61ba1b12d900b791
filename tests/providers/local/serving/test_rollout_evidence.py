"""Rollouts on real servers judged on evidence: too few requests is no pass, and
requests that are the client's fault are no evidence against the new variants."""

from __future__ import annotations

import threading

import httpx
import pytest
from mlform.engine.provider import Progress, ResourceRef, UpdateRequest

from .conftest import uri
from .test_endpoint_handler import Traffic, one_variant, predict

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REF = ResourceRef("ep", "endpoint")
FAST = {"strategy": "canary", "steps": [10, 50], "wait": "300ms"}


def update(handler, created, new: dict, messages: list[str] | None = None):
    progress = Progress(lambda m, _f: messages.append(m)) if messages is not None else Progress()
    return handler.update(UpdateRequest(REF, one_variant(1), created.outputs, new), progress)


def test_a_canary_without_traffic_rolls_back_and_says_what_it_lacked(handler, endpoints) -> None:
    created = endpoints("ep", one_variant(1))
    url = created.outputs["url"]
    updated = update(handler, created, one_variant(2, rollout=FAST,
                                                   rollback={"evidence_timeout": "1s"}))
    assert updated.error == (
        "rolled back: canary step 10% is inconclusive: the new variants answered 0 requests "
        "in 1s (besides the step's wait), and rollback.min_requests asks for 20; traffic is "
        "back on the previous variants: send traffic to the endpoint while it rolls out, "
        "lower rollback.min_requests (0 promotes without evidence) or raise "
        "rollback.evidence_timeout")
    assert updated.outputs["traffic"] == {"champion": 100.0}
    health = httpx.get(f"{url}/health").json()
    assert health["variants"]["champion"]["model"] == uri(1) and health["canary"] is None


def test_hold_keeps_the_split_in_the_outputs_and_the_next_update_resumes(
        handler, endpoints) -> None:
    created = endpoints("ep", one_variant(1))
    url = created.outputs["url"]
    held = update(handler, created, one_variant(2, rollout=FAST, rollback={
        "evidence_timeout": "500ms", "on_inconclusive": "hold"}))
    assert "(rollback.on_inconclusive: hold) and the next apply resumes" in held.error
    health = httpx.get(f"{url}/health").json()
    assert health["canary_percent"] == 10.0
    assert health["canary"]["champion"]["model"] == uri(2)
    assert held.outputs["traffic"] == health["traffic"]  # what the server really serves
    messages: list[str] = []
    with Traffic(url):
        resumed = update(handler, created, one_variant(2, rollout=FAST), messages)
    assert resumed.error is None, resumed.error
    assert [m.split(":")[0] for m in messages if "requests," in m] == \
        ["canary step 10%", "canary step 50%", "canary step 100%"]
    assert predict(url)["predictions"] == ["yes"]


def test_min_requests_zero_promotes_without_traffic_and_says_so(handler, endpoints) -> None:
    created = endpoints("ep", one_variant(1))
    updated = update(handler, created, one_variant(2, rollout=FAST,
                                                   rollback={"min_requests": 0}))
    assert updated.error is None
    assert updated.detail.splitlines()[0] == (
        "canary step 10%: no requests on the new variants (promoted without evidence: "
        "rollback.min_requests is 0)")
    assert predict(created.outputs["url"])["predictions"] == ["yes"]


MALFORMED = [
    {"instances": [[1, 2]]},                 # wrong width
    {"instances": [[1, "x", 3]]},            # wrong type
    {"instances": [{"a": 1}]},               # missing features
]


def test_malformed_requests_during_a_canary_do_not_roll_it_back(handler, endpoints) -> None:
    """As many malformed requests as good ones: counted against the canary, they would
    be an error rate far above 0.05."""
    created = endpoints("ep", one_variant(1))
    url = created.outputs["url"]
    stop = threading.Event()
    refused: list[int] = []

    def attacker() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                for body in MALFORMED:
                    refused.append(client.post("/predict", json=body).status_code)

    thread = threading.Thread(target=attacker)
    with Traffic(url) as traffic:
        thread.start()
        try:
            updated = update(handler, created, one_variant(2, rollout=FAST))
        finally:
            stop.set()
            thread.join()
    assert updated.error is None, updated.error
    assert set(refused) == {400} and len(refused) > 50
    assert set(traffic.statuses) == {200}
    assert "client errors (not counted)" in updated.detail
    assert predict(url)["predictions"] == ["yes"]
    metrics = httpx.get(f"{url}/metrics").text
    client_errors = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                        if line.startswith("mlform_endpoint_client_errors_total{"))
    assert client_errors >= len(refused) - 3  # the last few may land after the scrape
