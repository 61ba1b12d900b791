"""The S3 state backend against moto's S3: atomic writes, conditional-write lock, journal."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import BUCKET, REGION
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.backend import JournalEntry, LockHeld, LockInfo
from mlform.engine.state.model import ResourceState, State
from mlform.engine.state.s3_backend import S3Backend
from mlform.engine.state.statefile import resource_to_json

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


def test_write_then_read_keeps_the_previous_state_as_backup(backend, client):
    backend.write(state_with(1, "a"))
    backend.write(state_with(2, "a", "b"))
    assert backend.read() == state_with(2, "a", "b")
    backup = client("s3").get_object(Bucket=BUCKET, Key=KEY + ".backup")["Body"].read()
    assert b'"serial": 1' in backup or b'"serial":1' in backup


def test_a_failed_put_leaves_the_previous_state_readable(backend):
    backend.write(state_with(1, "a"))

    def connection_lost(**kwargs):
        raise ConnectionError("connection reset while sending the state")

    backend.client.meta.events.register("before-send.s3.PutObject", connection_lost)
    with pytest.raises(MlformError, match="cannot write the state"):
        backend.write(state_with(2, "a", "b"))
    backend.client.meta.events.unregister("before-send.s3.PutObject", connection_lost)
    assert backend.read() == state_with(1, "a")


def test_lock_refused_names_the_holder(backend, aws):
    mine = LockInfo.mine("mlform apply")
    backend.lock(mine)
    other = S3Backend(BUCKET, KEY, REGION, endpoint_url=aws)
    with pytest.raises(LockHeld) as refused:
        other.lock(LockInfo.mine("mlform destroy"), timeout=0.0)
    assert refused.value.holder == mine
    assert "running 'mlform apply'" in str(refused.value)
    backend.unlock(mine.id)
    other.lock(LockInfo.mine("mlform destroy"))


@pytest.mark.parametrize(("lock_id", "expected"), [
    ("wrong-id", "does not match the lock"),
    (None, None),
], ids=["force-with-another-id-is-refused", "force-with-the-holder-id-removes-it"])
def test_force_unlock_checks_the_id(backend, aws, lock_id, expected):
    held = LockInfo.mine("mlform apply")
    backend.lock(held)
    stranger = S3Backend(BUCKET, KEY, REGION, endpoint_url=aws)
    if expected:
        with pytest.raises(MlformError, match=expected):
            stranger.unlock(lock_id, force=True)
        assert stranger.holder() == held
    else:
        stranger.unlock(held.id, force=True)
        assert stranger.holder() is None


def test_two_processes_racing_for_the_lock_one_wins(aws):
    script = textwrap.dedent(f"""
        from mlform.engine.state.backend import LockHeld, LockInfo
        from mlform.engine.state.s3_backend import S3Backend
        b = S3Backend({BUCKET!r}, {KEY!r}, {REGION!r}, endpoint_url={aws!r})
        try:
            b.lock(LockInfo.mine("race"))
            print("won")
        except LockHeld:
            print("refused")
    """)
    racers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               text=True) for _ in range(2)]
    results = sorted(p.communicate(timeout=60)[0].strip() for p in racers)
    assert results == ["refused", "won"]


def test_journal_entries_are_replayed_on_read_and_cleared_by_write(backend, client):
    backend.write(state_with(1, "a"))
    done = ResourceState("b", "dataset", "sagemaker", "id-b", {"source": "a.csv"},
                         {"uri": "s3://x"})
    backend.journal_append(JournalEntry("intent", "b", "lin-1", 1,
                                        resource_to_json(done.with_(status="pending"), "s")))
    backend.journal_append(JournalEntry("done", "b", "lin-1", 1, resource_to_json(done, "s")))
    listed = client("s3").list_objects_v2(Bucket=BUCKET, Prefix=KEY + ".journal/")
    assert [o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]] == \
        ["0000000001.json", "0000000002.json"]
    replayed = backend.read()
    assert replayed.resources["b"].id == "id-b"
    backend.write(replayed.next_serial())
    assert backend.journal_read() == []
    assert "b" in backend.read().resources


@pytest.mark.parametrize("with_backup", [False, True], ids=["no-backup", "readable-backup"])
def test_a_damaged_state_suggests_only_a_backup_that_exists(backend, client, with_backup):
    backend.write(state_with(1, "a"))
    if with_backup:
        backend.write(state_with(2, "a"))
    client("s3").put_object(Bucket=BUCKET, Key=KEY, Body=b"{oops")
    with pytest.raises(MlformError) as caught:
        backend.read()
    help_text = caught.value.diagnostics[0].help
    suggestion = f"copy 's3://{BUCKET}/{KEY}.backup' over 's3://{BUCKET}/{KEY}'"
    assert (suggestion in help_text) is with_backup
    assert ("there is no backup of it to restore" in help_text) is not with_backup
