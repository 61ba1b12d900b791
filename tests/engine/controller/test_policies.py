"""The engine's side of a retraining policy's decision: the data versions it reads at
the sources, when a schedule counts from, and that the provider only records it."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from mlform.engine.controller.data_versions import data_version
from mlform.engine.controller.policies import decide_policy
from mlform.engine.provider import ResourceRef, TickRequest, TickResponse
from mlform.ml.retraining import DataVersion

REF = ResourceRef("policy", "retraining_policy", "policy")
SCHEDULE = {"training_job": "train", "triggers": [{"schedule": "1h"}], "cooldown": "0s"}
NOW = 1_000_000.0  # 1970-01-12T13:46:40Z


@pytest.mark.parametrize(("inputs", "outputs", "expected"), [
    pytest.param({"source": "d.csv"}, {"version": "0123456789ab"},
                 DataVersion("read", "d.csv", "0123456789ab", "DIGEST"), id="local file read"),
    pytest.param({"source": "s3://bucket/d.csv"}, {"version": "v"},
                 DataVersion("remote", "s3://bucket/d.csv", "v"), id="remote not read"),
    pytest.param({"source": "gone.csv"}, {"version": "v"},
                 DataVersion("missing", "gone.csv", "v"), id="missing file"),
    pytest.param({"source": "d.csv"}, None, DataVersion("not_applied"), id="no version yet"),
    pytest.param(None, None, DataVersion("not_applied"), id="not in state"),
])
def test_data_version(tmp_path, inputs, outputs, expected):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    digest = hashlib.sha256(b"a,b\n1,2\n").hexdigest()[:12]
    if expected.current == "DIGEST":
        expected = DataVersion("read", "d.csv", "0123456789ab", digest)
    assert data_version(tmp_path, inputs, outputs) == expected


class Recorder:
    """A provider that keeps what the engine hands its policies."""

    def __init__(self, response=None):
        self.requests: list[TickRequest] = []
        self.response = response

    def tick(self, req):
        self.requests.append(req)
        return self.response


def request(outputs: dict) -> TickRequest:
    return TickRequest(resource=REF, inputs=SCHEDULE, outputs=outputs, stack_outputs={},
                       stack_inputs={}, now=NOW)


@pytest.mark.parametrize(("outputs", "updated_at", "fires"), [
    pytest.param({"created_at": NOW - 2 * 3600}, "", True, id="created two hours ago"),
    pytest.param({"created_at": NOW - 600}, "", False, id="created ten minutes ago"),
    pytest.param({}, "1970-01-12T11:46:40Z", True,
                 id="no created_at: the state entry's time, two hours ago"),
    pytest.param({}, "1970-01-12T13:36:40Z", False,
                 id="no created_at: the state entry's time, ten minutes ago"),
    pytest.param({}, "", False, id="no time at all: counts from now"),
])
def test_a_schedule_counts_from_creation(outputs, updated_at, fires):
    provider = Recorder()
    resp = decide_policy(provider, SimpleNamespace(updated_at=updated_at), request(outputs),
                         stack_dir=None)
    assert (resp.retrain is not None) is fires
    (recorded,) = provider.requests
    assert recorded.decision["acted"] is fires


def test_the_provider_records_and_the_engine_decides():
    provider = Recorder(TickResponse(retrain="the provider's own idea", events=["logged"],
                                     error="disk full"))
    resp = decide_policy(provider, SimpleNamespace(updated_at=""),
                         request({"created_at": NOW - 2 * 3600, "last_action": None}),
                         stack_dir=None)
    assert resp.retrain == "schedule 1h: last retrain 1970-01-12T11:46:40+00:00"
    assert resp.outputs["last_action"]["reason"] == resp.retrain
    assert resp.events == ["policy policy: retraining 'train' (retrain_and_deploy): "
                           "schedule 1h: last retrain 1970-01-12T11:46:40+00:00", "logged"]
    assert resp.error == "disk full"


def test_a_policy_that_does_not_validate_is_an_error_and_not_recorded():
    provider = Recorder()
    bad = TickRequest(resource=REF, inputs={"training_job": "train", "triggers": [{}]},
                      outputs={}, stack_outputs={}, stack_inputs={}, now=NOW)
    resp = decide_policy(provider, SimpleNamespace(updated_at=""), bad, stack_dir=None)
    assert resp.error.startswith("retraining policy 'policy': ")
    assert "a trigger has exactly one of" in resp.error
    assert provider.requests == []
