"""The GCS state backend against a real GCS emulator (fake-gcs-server): what only GCS does
(google-cloud-storage's retries, a crash mid-upload, a missing bucket). The behaviour all
remote backends share (compare-and-swap writes, the lock, the journal) is tested once per
platform in tests/engine/state/test_remote_backends.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.backend import LockInfo
from mlform.engine.state.gcs_backend import GcsBackend
from mlform.engine.state.model import ResourceState, State

pytestmark = pytest.mark.e2e

PREFIX = "stacks/fraud"


@pytest.fixture
def make(gcs, gcs_bucket):
    """`make()`: a new backend on the test's bucket, with its own client (the commands these
    tests start make theirs from `endpoint_url`, as a stack's `backend:` does)."""
    return lambda: GcsBackend(gcs_bucket, PREFIX + "/", client=gcs.client())


def state_with(serial: int, *names: str) -> State:
    state = State(lineage="lin-1", serial=serial, stack="fraud", salt="s")
    for name in names:
        state = state.with_resource(ResourceState(name, "dataset", "vertex", f"id-{name}",
                                                  {"source": "a.csv"}, {"uri": "gs://x"}))
    return state



def test_a_retried_lock_create_that_landed_holds_the_lock(make, monkeypatch):
    """A create whose answer was lost is retried and refused (412): the lock is ours."""
    from google.api_core.exceptions import PreconditionFailed
    from google.cloud.storage import Blob

    create = Blob.upload_from_string

    def lost_answer(self, *args, **kwargs):
        create(self, *args, **kwargs)
        raise PreconditionFailed("retried create refused")

    backend = make()
    mine = LockInfo.mine("apply")
    monkeypatch.setattr(Blob, "upload_from_string", lost_answer)
    backend.lock(mine)
    monkeypatch.setattr(Blob, "upload_from_string", create)
    assert backend.holder() == mine
    backend.unlock(mine.id)
    assert backend.holder() is None


def test_a_retried_state_write_that_landed_is_not_a_conflict(make, monkeypatch):
    from google.api_core.exceptions import PreconditionFailed
    from google.cloud.storage import Blob

    backend = make()
    backend.write(state_with(1, "a"))
    upload = Blob.upload_from_string

    def lost_answer(self, *args, **kwargs):
        upload(self, *args, **kwargs)
        if kwargs.get("if_generation_match") is not None:
            raise PreconditionFailed("retried write refused")

    monkeypatch.setattr(Blob, "upload_from_string", lost_answer)
    backend.write(state_with(2, "a", "b"))
    monkeypatch.setattr(Blob, "upload_from_string", upload)
    backend.write(state_with(3, "a", "b"))  # and it knows the generation it wrote
    assert make().read() == state_with(3, "a", "b")


def test_a_crash_while_writing_the_state_leaves_the_previous_one(gcs, gcs_bucket, make,
                                                                 no_gcp_credentials):
    """kill -9 half way through sending the new state: the object is the old state, whole."""
    before = make()
    before.write(state_with(1, "a"))
    script = textwrap.dedent(f"""
        import http.client, os, signal
        from mlform.engine.state.backend import LockInfo
        from mlform.engine.state.gcs_backend import GcsBackend
        from mlform.engine.state.model import State
        b = GcsBackend({gcs_bucket!r}, {PREFIX!r}, endpoint_url={gcs.url!r})
        b.lock(LockInfo.mine("apply"))
        state = b.read()
        send = http.client.HTTPConnection.send

        def send_half_then_die(self, data):
            if isinstance(data, bytes | bytearray) and b"half-written" in data:
                send(self, data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            return send(self, data)

        http.client.HTTPConnection.send = send_half_then_die
        b.write(State(lineage=state.lineage, serial=2, stack="half-written", salt="s"))
        print("not killed")
    """)
    crashed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=60)
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    after = make()
    assert after.read() == state_with(1, "a")
    holder = after.holder()
    assert holder is not None and holder.command == "apply"  # a stale lock, for state unlock
    after.unlock(holder.id, force=True)


def test_a_missing_bucket_is_named(gcs):
    with pytest.raises(MlformError) as caught:
        GcsBackend("no-such-bucket-here", PREFIX, client=gcs.client()).read()
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.summary == \
        "cannot read the state: the bucket 'no-such-bucket-here' does not exist"
    assert "gcloud storage buckets create gs://no-such-bucket-here" in diagnostic.help
