"""The Azure Blob state backend against a real Azure Blob emulator (Azurite): writes conditional
on the etag read, the create-only lock, the journal, and crashes mid-write."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.azureblob_backend import AzureBlobBackend, EtagMismatch
from mlform.engine.state.backend import JournalEntry, LockHeld, LockInfo
from mlform.engine.state.model import ResourceState, State
from mlform.engine.state.statefile import resource_to_json

pytestmark = pytest.mark.e2e

KEY = "stacks/fraud/state.json"


@pytest.fixture
def signed_in(azurite, monkeypatch):
    """This process (and what it starts) signs in to Azurite through the connection string,
    as a user of the emulator does."""
    monkeypatch.delenv("AZURE_STORAGE_KEY", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)


@pytest.fixture
def make(azurite, blob_container, signed_in):
    """`make()`: a new backend on the test's container, made as a stack's `backend:` makes it."""
    return lambda: AzureBlobBackend(azurite.account_name, blob_container, "/" + KEY,
                                    account_url=azurite.url)


@pytest.fixture
def container(azurite, blob_container):
    return azurite.client().get_container_client(blob_container)


def state_with(serial: int, *names: str) -> State:
    state = State(lineage="lin-1", serial=serial, stack="fraud", salt="s")
    for name in names:
        state = state.with_resource(ResourceState(name, "dataset", "aml", f"id-{name}",
                                                  {"source": "a.csv"}, {"uri": "azureml://x"}))
    return state


def stored(container, name: str = KEY) -> dict | None:
    blob = container.get_blob_client(name)
    return json.loads(blob.download_blob().readall()) if blob.exists() else None


def test_write_then_read_keeps_the_previous_state_as_backup(make, container, azurite):
    backend = make()
    assert backend.read() is None
    backend.write(state_with(1, "a"))
    backend.write(state_with(2, "a", "b"))
    assert make().read() == state_with(2, "a", "b")
    assert stored(container)["serial"] == 2
    assert stored(container, KEY + ".backup")["serial"] == 1
    assert backend.describe() == \
        f"azureblob state '{azurite.url}/{container.container_name}/{KEY}'"


def test_a_state_written_by_someone_else_meanwhile_is_not_overwritten(make, container,
                                                                      azurite):
    mine, theirs = make(), make()
    mine.write(state_with(1, "a"))
    assert mine.read() == theirs.read() == state_with(1, "a")
    theirs.write(state_with(2, "a", "theirs"))
    with pytest.raises(EtagMismatch) as refused:
        mine.write(state_with(2, "a", "mine"))
    diagnostic = refused.value.diagnostics[0]
    assert diagnostic.summary == (
        f"the state in azureblob state '{azurite.url}/{container.container_name}/{KEY}' was "
        "written by someone else since this command read it; this command's state was not "
        "written")
    assert diagnostic.detail.startswith('read etag "0x')
    assert sorted(stored(container)["resources"]) == ["a", "theirs"]
    # Once it has read the new state, it may write again.
    assert mine.read() == state_with(2, "a", "theirs")
    mine.write(state_with(3, "a", "theirs", "mine"))
    assert stored(container)["serial"] == 3


@pytest.mark.parametrize("first", [False, True], ids=["if-match-etag", "if-none-match-star"])
def test_a_state_written_after_the_check_but_before_the_upload_is_not_overwritten(
        make, container, monkeypatch, first):
    """The check before writing leaves a window; the upload's own condition (If-Match on the
    etag read, or If-None-Match: * for the first state) closes it."""
    mine, theirs = make(), make()
    if not first:
        mine.write(state_with(1, "a"))
    mine.read()
    theirs.read()
    check = mine._get

    def check_then_someone_writes(name):
        found = check(name)
        if name == KEY:
            theirs.write(state_with(2, "theirs"))
        return found

    monkeypatch.setattr(mine, "_get", check_then_someone_writes)
    with pytest.raises(EtagMismatch, match="was written by someone else"):
        mine.write(state_with(2, "mine"))
    assert sorted(stored(container)["resources"]) == ["theirs"]


def test_two_first_writes_only_one_creates_the_state(make, container):
    first, second = make(), make()
    assert first.read() is None and second.read() is None
    first.write(state_with(1, "first"))
    with pytest.raises(EtagMismatch) as refused:
        second.write(state_with(1, "second"))
    assert refused.value.diagnostics[0].detail.startswith("read no state, found etag ")
    assert sorted(stored(container)["resources"]) == ["first"]


def test_a_refused_write_keeps_the_journal_of_its_apply(make):
    mine, theirs = make(), make()
    mine.write(state_with(1, "a"))
    mine.read()
    theirs.read()
    theirs.write(state_with(2, "a"))
    done = ResourceState("b", "dataset", "aml", "id-b", {"source": "a.csv"},
                         {"uri": "azureml://x"})
    mine.journal_append(JournalEntry("done", "b", "lin-1", 1, resource_to_json(done, "s")))
    with pytest.raises(EtagMismatch):
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


def test_the_lock_blob_names_its_holder(make, container):
    held = LockInfo.mine("apply")
    make().lock(held)
    assert stored(container, KEY + ".lock") == held.to_json()


def test_a_retried_lock_create_that_landed_holds_the_lock(make, monkeypatch):
    """A create whose answer was lost is retried and refused (409): the lock is ours."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobClient

    create = BlobClient.upload_blob

    def lost_answer(self, *args, **kwargs):
        create(self, *args, **kwargs)
        raise ResourceExistsError("retried create refused")

    backend = make()
    mine = LockInfo.mine("apply")
    monkeypatch.setattr(BlobClient, "upload_blob", lost_answer)
    backend.lock(mine)
    monkeypatch.setattr(BlobClient, "upload_blob", create)
    assert backend.holder() == mine
    backend.unlock(mine.id)
    assert backend.holder() is None


def test_a_retried_state_write_that_landed_is_not_a_conflict(make, monkeypatch):
    from azure.core.exceptions import ResourceModifiedError
    from azure.storage.blob import BlobClient

    backend = make()
    backend.write(state_with(1, "a"))
    upload = BlobClient.upload_blob

    def lost_answer(self, *args, **kwargs):
        upload(self, *args, **kwargs)
        if kwargs.get("match_condition") is not None:
            raise ResourceModifiedError("retried write refused")

    monkeypatch.setattr(BlobClient, "upload_blob", lost_answer)
    backend.write(state_with(2, "a", "b"))
    monkeypatch.setattr(BlobClient, "upload_blob", upload)
    backend.write(state_with(3, "a", "b"))  # and it knows the etag it wrote
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
    with pytest.raises(MlformError, match="no lock is recorded on azureblob state"):
        make().unlock("some-id", force=True)


def test_unlock_leaves_a_lock_taken_by_someone_else_after_it_was_read(make, monkeypatch):
    """The delete is conditional on the lock blob's etag read: if the holder released it and
    another command took it meanwhile, the new lock stays."""
    holder, stranger, newcomer = make(), make(), make()
    old = LockInfo.mine("mlform apply")
    holder.lock(old)
    read = stranger._holder
    new = LockInfo.mine("mlform destroy")

    def read_then_lock_changes():
        found = read()
        holder.unlock(old.id)
        newcomer.lock(new)
        return found

    monkeypatch.setattr(stranger, "_holder", read_then_lock_changes)
    with pytest.raises(MlformError, match="changed while it was being removed"):
        stranger.unlock(old.id, force=True)
    assert newcomer.holder() == new


def test_two_processes_racing_for_the_lock_one_wins(azurite, blob_container, signed_in):
    script = textwrap.dedent(f"""
        from mlform.engine.state.backend import LockHeld, LockInfo
        from mlform.engine.state.azureblob_backend import AzureBlobBackend
        b = AzureBlobBackend({azurite.account_name!r}, {blob_container!r}, {KEY!r},
                             account_url={azurite.url!r})
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


def test_journal_entries_are_replayed_on_read_and_cleared_by_write(make, container):
    backend = make()
    backend.write(state_with(1, "a"))
    backend.read()
    done = ResourceState("b", "dataset", "aml", "id-b", {"source": "a.csv"},
                         {"uri": "azureml://x"})
    backend.journal_append(JournalEntry("intent", "b", "lin-1", 1,
                                        resource_to_json(done.with_(status="pending"), "s")))
    backend.journal_append(JournalEntry("done", "b", "lin-1", 1, resource_to_json(done, "s")))
    listed = [b.name for b in container.list_blobs(name_starts_with=KEY + ".journal/")]
    assert listed == [f"{KEY}.journal/0000000001.json", f"{KEY}.journal/0000000002.json"]
    replayed = make().read()
    assert replayed.resources["b"].id == "id-b"
    backend.write(replayed.next_serial())
    assert backend.journal_read() == []
    assert "b" in make().read().resources


def test_a_crash_while_writing_the_state_leaves_the_previous_one(azurite, blob_container, make):
    """kill -9 half way through sending the new state: the blob is the old state, whole."""
    before = make()
    before.write(state_with(1, "a"))
    script = textwrap.dedent(f"""
        import http.client, os, signal
        from mlform.engine.state.backend import LockInfo
        from mlform.engine.state.azureblob_backend import AzureBlobBackend
        from mlform.engine.state.model import State
        b = AzureBlobBackend({azurite.account_name!r}, {blob_container!r}, {KEY!r},
                             account_url={azurite.url!r})
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
def test_a_damaged_state_suggests_only_a_backup_that_exists(make, container, azurite,
                                                            with_backup):
    backend = make()
    backend.write(state_with(1, "a"))
    if with_backup:
        backend.write(state_with(2, "a"))
    container.get_blob_client(KEY).upload_blob(b"{oops", overwrite=True)
    with pytest.raises(MlformError) as caught:
        make().read()
    help_text = caught.value.diagnostics[0].help
    url = f"{azurite.url}/{container.container_name}/{KEY}"
    assert (f"copy '{url}.backup' over '{url}'" in help_text) is with_backup
    assert ("there is no backup of it to restore" in help_text) is not with_backup


def test_a_missing_container_is_named(azurite, signed_in):
    with pytest.raises(MlformError) as caught:
        AzureBlobBackend(azurite.account_name, "no-such-container", KEY,
                         account_url=azurite.url).read()
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.summary == ("cannot read the state: the container 'no-such-container' "
                                  f"does not exist in '{azurite.url}'")
    assert "az storage container create --name no-such-container" in diagnostic.help


def test_a_wrong_account_key_is_a_permission_error(azurite, blob_container, monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_KEY", "d3Jvbmcta2V5")
    with pytest.raises(MlformError) as caught:
        AzureBlobBackend(azurite.account_name, blob_container, KEY,
                         account_url=azurite.url).read()
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.summary.startswith("cannot read the state: permission denied on ")
    assert "'Storage Blob Data Contributor' role" in diagnostic.help


def test_the_account_key_from_the_environment_signs_requests(azurite, blob_container,
                                                            monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_KEY", azurite.account_key)
    backend = AzureBlobBackend(azurite.account_name, blob_container, KEY,
                               account_url=azurite.url)
    backend.write(state_with(1, "a"))
    assert backend.read() == state_with(1, "a")


def test_a_connection_string_for_another_endpoint_is_refused(azurite, blob_container,
                                                            signed_in):
    """The state goes where `backend:` says, or nowhere: a connection string left over for
    another account does not redirect it."""
    with pytest.raises(MlformError) as caught:
        AzureBlobBackend(azurite.account_name, blob_container, KEY)
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.summary == (
        f"AZURE_STORAGE_CONNECTION_STRING is for '{azurite.url}', but 'backend:' names "
        f"'https://{azurite.account_name}.blob.core.windows.net'")
    assert "set 'account_url' in 'backend:'" in diagnostic.help
