"""The Azure Blob state backend against a real Azure Blob emulator (Azurite): what only Azure
does (the If-Match window, azure-storage-blob's retries, a crash mid-upload, credentials). The
behaviour all remote backends share (compare-and-swap writes, the lock, the journal) is tested
once per platform in tests/engine/state/test_remote_backends.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.azureblob_backend import AzureBlobBackend, EtagMismatch
from mlform.engine.state.backend import LockInfo
from mlform.engine.state.model import ResourceState, State

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
