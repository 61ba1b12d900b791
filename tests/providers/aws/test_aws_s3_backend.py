"""The S3 state backend against moto's S3: what only S3 does (a put lost in transit). The
behaviour all remote backends share (the lock, the journal, the backup) is tested once per
platform in tests/engine/state/test_remote_backends.py."""

from __future__ import annotations

import pytest
from conftest import BUCKET, REGION
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.model import ResourceState, State
from mlform.engine.state.s3_backend import S3Backend

KEY = "stacks/fraud/state.json"


@pytest.fixture
def backend(aws: str) -> S3Backend:
    return S3Backend(BUCKET, KEY, REGION, endpoint_url=aws)


def state_with(serial: int, *names: str) -> State:
    state = State(lineage="lin-1", serial=serial, stack="fraud", salt="s")
    for name in names:
        state = state.with_resource(ResourceState(name, "dataset", "sagemaker", f"id-{name}",
                                                  {"source": "a.csv"}, {"uri": "s3://x"}))
    return state


def test_a_failed_put_leaves_the_previous_state_readable(backend):
    backend.write(state_with(1, "a"))

    def connection_lost(**kwargs):
        raise ConnectionError("connection reset while sending the state")

    backend.client.meta.events.register("before-send.s3.PutObject", connection_lost)
    with pytest.raises(MlformError, match="cannot write the state"):
        backend.write(state_with(2, "a", "b"))
    backend.client.meta.events.unregister("before-send.s3.PutObject", connection_lost)
    assert backend.read() == state_with(1, "a")
