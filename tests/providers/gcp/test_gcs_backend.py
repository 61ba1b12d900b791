"""The GCS state backend against a real GCS emulator (fake-gcs-server): compare-and-swap
writes on the generation read, the create-only lock, the journal, and crashes mid-write."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.backend import JournalEntry, LockHeld, LockInfo
from mlform.engine.state.gcs_backend import GcsBackend, GenerationMismatch
from mlform.engine.state.model import ResourceState, State
from mlform.engine.state.statefile import resource_to_json

pytestmark = pytest.mark.e2e

PREFIX = "stacks/fraud"
NAME = f"{PREFIX}/state.json"


@pytest.fixture
def make(gcs, gcs_bucket):
    """`make()`: a new backend on the test's bucket, with its own client (the commands these
    tests start make theirs from `endpoint_url`, as a stack's `backend:` does)."""
    return lambda: GcsBackend(gcs_bucket, PREFIX + "/", client=gcs.client())


@pytest.fixture
def bucket(gcs, gcs_bucket):
    return gcs.client().bucket(gcs_bucket)


def state_with(serial: int, *names: str) -> State:
    state = State(lineage="lin-1", serial=serial, stack="fraud", salt="s")
    for name in names:
        state = state.with_resource(ResourceState(name, "dataset", "vertex", f"id-{name}",
                                                  {"source": "a.csv"}, {"uri": "gs://x"}))
    return state


def stored(bucket, name: str = NAME) -> dict | None:
    blob = bucket.get_blob(name)
    return None if blob is None else json.loads(blob.download_as_bytes())


def test_write_then_read_keeps_the_previous_state_as_backup(make, bucket):
    backend = make()
    assert backend.read() is None
    backend.write(state_with(1, "a"))
    backend.write(state_with(2, "a", "b"))
    assert make().read() == state_with(2, "a", "b")
    assert stored(bucket)["serial"] == 2
    assert stored(bucket, NAME + ".backup")["serial"] == 1
    assert backend.describe() == f"gcs state 'gs://{bucket.name}/{NAME}'"


def test_a_state_written_by_someone_else_meanwhile_is_not_overwritten(make, bucket):
    mine, theirs = make(), make()
    mine.write(state_with(1, "a"))
    assert mine.read() == theirs.read() == state_with(1, "a")
    theirs.write(state_with(2, "a", "theirs"))
    with pytest.raises(GenerationMismatch) as refused:
        mine.write(state_with(2, "a", "mine"))
    assert refused.value.diagnostics[0].summary == (
        f"the state in gcs state 'gs://{bucket.name}/{NAME}' was written by someone else "
        "since this command read it; this command's state was not written")
    assert sorted(stored(bucket)["resources"]) == ["a", "theirs"]
    # Once it has read the new state, it may write again.
    assert mine.read() == state_with(2, "a", "theirs")
    mine.write(state_with(3, "a", "theirs", "mine"))
    assert stored(bucket)["serial"] == 3


def test_two_first_writes_only_one_creates_the_state(make, bucket):
    first, second = make(), make()
    assert first.read() is None and second.read() is None
    first.write(state_with(1, "first"))
    with pytest.raises(GenerationMismatch, match="was written by someone else"):
        second.write(state_with(1, "second"))
    assert sorted(stored(bucket)["resources"]) == ["first"]


def test_a_refused_write_keeps_the_journal_of_its_apply(make):
    mine, theirs = make(), make()
    mine.write(state_with(1, "a"))
    mine.read()
    theirs.read()
    theirs.write(state_with(2, "a"))
    done = ResourceState("b", "dataset", "vertex", "id-b", {"source": "a.csv"},
                         {"uri": "gs://x"})
    mine.journal_append(JournalEntry("done", "b", "lin-1", 1, resource_to_json(done, "s")))
    with pytest.raises(GenerationMismatch):
        mine.write(state_with(2, "a", "b"))
    assert [e.name for e in mine.journal_read()] == ["b"]


def test_lock_refused_names_the_holder(make):
    backend, other = make(), make()
    mine = LockInfo.mine("mlform apply")
    backend.lock(mine)
    with pytest.raises(LockHeld) as refused:
        other.lock(LockInfo.mine("mlform destroy"), timeout=0.0)
    assert refused.value.holder == mine
    assert "running 'mlform apply'" in str(refused.value)
    assert refused.value.where == backend.describe()
    backend.unlock(mine.id)
    assert backend.holder() is None
    other.lock(LockInfo.mine("mlform destroy"))


def test_the_lock_object_names_its_holder(make, bucket):
    held = LockInfo.mine("apply")
    make().lock(held)
    assert stored(bucket, NAME + ".lock") == held.to_json()


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


@pytest.mark.parametrize(("lock_id", "expected"), [
    ("wrong-id", "does not match the lock"),
    (None, None),
], ids=["force-with-another-id-is-refused", "force-with-the-holder-id-removes-it"])
def test_force_unlock_checks_the_id(make, lock_id, expected):
    backend, stranger = make(), make()
    held = LockInfo.mine("mlform apply")
    backend.lock(held)
    if expected:
        with pytest.raises(MlformError, match=expected):
            stranger.unlock(lock_id, force=True)
        assert stranger.holder() == held
    else:
        stranger.unlock(held.id, force=True)
        assert stranger.holder() is None


def test_force_unlock_without_a_lock_says_there_is_none(make):
    with pytest.raises(MlformError, match="no lock is recorded on gcs state"):
        make().unlock("some-id", force=True)


def test_two_processes_racing_for_the_lock_one_wins(gcs, gcs_bucket, no_gcp_credentials):
    script = textwrap.dedent(f"""
        from mlform.engine.state.backend import LockHeld, LockInfo
        from mlform.engine.state.gcs_backend import GcsBackend
        b = GcsBackend({gcs_bucket!r}, {PREFIX!r}, endpoint_url={gcs.url!r})
        try:
            b.lock(LockInfo.mine("race"))
            print("won")
        except LockHeld:
            print("refused")
    """)
    racers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               text=True) for _ in range(3)]
    results = sorted(p.communicate(timeout=60)[0].strip() for p in racers)
    assert results == ["refused", "refused", "won"]


def test_journal_entries_are_replayed_on_read_and_cleared_by_write(make, bucket):
    backend = make()
    backend.write(state_with(1, "a"))
    backend.read()
    done = ResourceState("b", "dataset", "vertex", "id-b", {"source": "a.csv"},
                         {"uri": "gs://x"})
    backend.journal_append(JournalEntry("intent", "b", "lin-1", 1,
                                        resource_to_json(done.with_(status="pending"), "s")))
    backend.journal_append(JournalEntry("done", "b", "lin-1", 1, resource_to_json(done, "s")))
    listed = [b.name for b in bucket.list_blobs(prefix=NAME + ".journal/")]
    assert listed == [f"{NAME}.journal/0000000001.json", f"{NAME}.journal/0000000002.json"]
    replayed = make().read()
    assert replayed.resources["b"].id == "id-b"
    backend.write(replayed.next_serial())
    assert backend.journal_read() == []
    assert "b" in make().read().resources


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


@pytest.mark.parametrize("with_backup", [False, True], ids=["no-backup", "readable-backup"])
def test_a_damaged_state_suggests_only_a_backup_that_exists(make, bucket, with_backup):
    backend = make()
    backend.write(state_with(1, "a"))
    if with_backup:
        backend.write(state_with(2, "a"))
    bucket.blob(NAME).upload_from_string(b"{oops")
    with pytest.raises(MlformError) as caught:
        make().read()
    help_text = caught.value.diagnostics[0].help
    uri = f"gs://{bucket.name}/{NAME}"
    assert (f"copy '{uri}.backup' over '{uri}'" in help_text) is with_backup
    assert ("there is no backup of it to restore" in help_text) is not with_backup


def test_a_missing_bucket_is_named(gcs):
    with pytest.raises(MlformError) as caught:
        GcsBackend("no-such-bucket-here", PREFIX, client=gcs.client()).read()
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.summary == \
        "cannot read the state: the bucket 'no-such-bucket-here' does not exist"
    assert "gcloud storage buckets create gs://no-such-bucket-here" in diagnostic.help
