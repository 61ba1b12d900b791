"""The remote state backends' shared behaviour, once per platform, each against its emulator:
S3 on moto, GCS on fake-gcs-server, Azure Blob on Azurite (the emulator fixtures are the
provider suites', loaded here as tests/conformance does). What only one platform does (its
SDK's retries, its credentials, a crash mid-upload) stays in tests/providers/<platform>/.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.backend import JournalEntry, LockHeld, LockInfo
from mlform.engine.state.model import ResourceState, State
from mlform.engine.state.object_store import ObjectStoreBackend, VersionMismatch
from mlform.engine.state.statefile import resource_to_json

pytestmark = pytest.mark.e2e

PROVIDERS = Path(__file__).resolve().parents[2] / "providers"


def _conftest(platform: str):
    """tests/providers/<platform>/conftest.py as module `<platform>_conftest` (its folder on
    sys.path: it imports its emulator helpers by name)."""
    name = f"{platform}_conftest"
    if name in sys.modules:
        return sys.modules[name]
    folder = PROVIDERS / platform
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


aws_conftest, gcp_conftest, azure_conftest = (_conftest(p) for p in ("aws", "gcp", "azure"))
moto_url, aws = aws_conftest.moto_url, aws_conftest.aws
gcs, gcs_bucket = gcp_conftest.gcs, gcp_conftest.gcs_bucket
no_gcp_credentials = gcp_conftest.no_gcp_credentials
azurite, blob_container = azure_conftest.azurite, azure_conftest.blob_container

KEY = "stacks/fraud/state.json"


@dataclass
class Remote:
    """One platform's backend on a fresh bucket or container, and raw access to it."""

    make: Callable[[], ObjectStoreBackend]
    """A new backend on it, as a stack's `backend:` makes one."""
    make_source: str
    """The same, as Python source for a process a test starts (`b = ...`)."""
    uri: Callable[[str], str]
    get: Callable[[str], bytes | None]
    put: Callable[[str, bytes], None]
    list: Callable[[str], list[str]]
    compare_and_swap: bool


def _s3(request: pytest.FixtureRequest) -> Remote:
    import boto3

    url = request.getfixturevalue("aws")
    bucket, region = aws_conftest.BUCKET, aws_conftest.REGION
    from mlform.engine.state.s3_backend import S3Backend

    s3 = boto3.client("s3", region_name=region, endpoint_url=url)

    def get(key: str) -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    return Remote(
        make=lambda: S3Backend(bucket, KEY, region, client=s3),  # one client: making one is slow
        make_source=f"from mlform.engine.state.s3_backend import S3Backend\n"
                    f"b = S3Backend({bucket!r}, {KEY!r}, {region!r}, endpoint_url={url!r})",
        uri=lambda key: f"s3://{bucket}/{key}", get=get,
        put=lambda key, data: s3.put_object(Bucket=bucket, Key=key, Body=data),
        list=lambda prefix: [o["Key"] for o in s3.list_objects_v2(
            Bucket=bucket, Prefix=prefix).get("Contents", [])],
        compare_and_swap=False)


def _gcs(request: pytest.FixtureRequest) -> Remote:
    emulator = request.getfixturevalue("gcs")
    name = request.getfixturevalue("gcs_bucket")
    request.getfixturevalue("no_gcp_credentials")
    from mlform.engine.state.gcs_backend import GcsBackend

    bucket = emulator.client().bucket(name)

    def get(key: str) -> bytes | None:
        blob = bucket.get_blob(key)
        return None if blob is None else blob.download_as_bytes()

    return Remote(
        make=lambda: GcsBackend(name, "stacks/fraud/", client=emulator.client()),
        make_source=f"from mlform.engine.state.gcs_backend import GcsBackend\n"
                    f"b = GcsBackend({name!r}, 'stacks/fraud', endpoint_url={emulator.url!r})",
        uri=lambda key: f"gs://{name}/{key}", get=get,
        put=lambda key, data: bucket.blob(key).upload_from_string(data),
        list=lambda prefix: [b.name for b in bucket.list_blobs(prefix=prefix)],
        compare_and_swap=True)


def _azureblob(request: pytest.FixtureRequest) -> Remote:
    emulator = request.getfixturevalue("azurite")
    name = request.getfixturevalue("blob_container")
    monkeypatch = request.getfixturevalue("monkeypatch")
    # Signed in through the connection string, as a user of the emulator is.
    monkeypatch.delenv("AZURE_STORAGE_KEY", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", emulator.connection_string)
    from mlform.engine.state.azureblob_backend import AzureBlobBackend

    container = emulator.client().get_container_client(name)

    def get(key: str) -> bytes | None:
        blob = container.get_blob_client(key)
        return blob.download_blob().readall() if blob.exists() else None

    return Remote(
        make=lambda: AzureBlobBackend(emulator.account_name, name, "/" + KEY,
                                      account_url=emulator.url),
        make_source=f"from mlform.engine.state.azureblob_backend import AzureBlobBackend\n"
                    f"b = AzureBlobBackend({emulator.account_name!r}, {name!r}, {KEY!r}, "
                    f"account_url={emulator.url!r})",
        uri=lambda key: f"{emulator.url}/{name}/{key}", get=get,
        put=lambda key, data: container.get_blob_client(key).upload_blob(data, overwrite=True),
        list=lambda prefix: [b.name for b in container.list_blobs(name_starts_with=prefix)],
        compare_and_swap=True)


PLATFORMS = {"s3": _s3, "gcs": _gcs, "azureblob": _azureblob}


@pytest.fixture(params=sorted(PLATFORMS))
def remote(request: pytest.FixtureRequest) -> Remote:
    return PLATFORMS[request.param](request)


@pytest.fixture(params=[p for p in sorted(PLATFORMS) if p != "s3"])
def cas_remote(request: pytest.FixtureRequest) -> Remote:
    """The platforms whose state writes are compare-and-swap on the version read (S3's
    state write is unconditional: its lock keeps writers apart)."""
    return PLATFORMS[request.param](request)


def state_with(serial: int, *names: str) -> State:
    state = State(lineage="lin-1", serial=serial, stack="fraud", salt="s")
    for name in names:
        state = state.with_resource(ResourceState(name, "dataset", "null", f"id-{name}",
                                                  {"source": "a.csv"}, {"uri": "x://y"}))
    return state


def stored(remote: Remote, key: str = KEY) -> dict | None:
    data = remote.get(key)
    return None if data is None else json.loads(data)


# --- state ------------------------------------------------------------------------------

def test_write_then_read_keeps_the_previous_state_as_backup(remote):
    backend = remote.make()
    assert backend.read() is None
    backend.write(state_with(1, "a"))
    backend.write(state_with(2, "a", "b"))
    assert remote.make().read() == state_with(2, "a", "b")
    assert stored(remote)["serial"] == 2
    assert stored(remote, KEY + ".backup")["serial"] == 1
    assert backend.describe() == f"{backend.kind} state '{remote.uri(KEY)}'"


@pytest.mark.parametrize("with_backup", [False, True], ids=["no-backup", "readable-backup"])
def test_a_damaged_state_suggests_only_a_backup_that_exists(remote, with_backup):
    backend = remote.make()
    backend.write(state_with(1, "a"))
    if with_backup:
        backend.write(state_with(2, "a"))
    remote.put(KEY, b"{oops")
    with pytest.raises(MlformError) as caught:
        remote.make().read()
    help_text = caught.value.diagnostics[0].help
    url = remote.uri(KEY)
    assert (f"copy '{url}.backup' over '{url}'" in help_text) is with_backup
    assert ("there is no backup of it to restore" in help_text) is not with_backup


def test_a_state_written_by_someone_else_meanwhile_is_not_overwritten(cas_remote):
    mine, theirs = cas_remote.make(), cas_remote.make()
    mine.write(state_with(1, "a"))
    assert mine.read() == theirs.read() == state_with(1, "a")
    theirs.write(state_with(2, "a", "theirs"))
    with pytest.raises(VersionMismatch) as refused:
        mine.write(state_with(2, "a", "mine"))
    assert type(refused.value) is mine.mismatch
    assert refused.value.diagnostics[0].summary == (
        f"the state in {mine.kind} state '{cas_remote.uri(KEY)}' was written by someone else "
        "since this command read it; this command's state was not written")
    assert sorted(stored(cas_remote)["resources"]) == ["a", "theirs"]
    # Once it has read the new state, it may write again.
    assert mine.read() == state_with(2, "a", "theirs")
    mine.write(state_with(3, "a", "theirs", "mine"))
    assert stored(cas_remote)["serial"] == 3


def test_two_first_writes_only_one_creates_the_state(cas_remote):
    first, second = cas_remote.make(), cas_remote.make()
    assert first.read() is None and second.read() is None
    first.write(state_with(1, "first"))
    with pytest.raises(VersionMismatch) as refused:
        second.write(state_with(1, "second"))
    assert refused.value.diagnostics[0].detail.startswith(
        f"read no state, found {second.version_word} ")
    assert sorted(stored(cas_remote)["resources"]) == ["first"]


def test_a_refused_write_keeps_the_journal_of_its_apply(cas_remote):
    mine, theirs = cas_remote.make(), cas_remote.make()
    mine.write(state_with(1, "a"))
    mine.read()
    theirs.read()
    theirs.write(state_with(2, "a"))
    done = ResourceState("b", "dataset", "null", "id-b", {"source": "a.csv"}, {"uri": "x://y"})
    mine.journal_append(JournalEntry("done", "b", "lin-1", 1, resource_to_json(done, "s")))
    with pytest.raises(VersionMismatch):
        mine.write(state_with(2, "a", "b"))
    assert [e.name for e in mine.journal_read()] == ["b"]


# --- lock -------------------------------------------------------------------------------

def test_lock_refused_names_the_holder(remote):
    backend, other = remote.make(), remote.make()
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


def test_the_lock_object_names_its_holder(remote):
    held = LockInfo.mine("apply")
    remote.make().lock(held)
    assert stored(remote, KEY + ".lock") == held.to_json()


@pytest.mark.parametrize(("lock_id", "expected"), [
    ("wrong-id", "does not match the lock"),
    (None, None),
], ids=["force-with-another-id-is-refused", "force-with-the-holder-id-removes-it"])
def test_force_unlock_checks_the_id(remote, lock_id, expected):
    held = LockInfo.mine("mlform apply")
    remote.make().lock(held)
    stranger = remote.make()
    if expected:
        with pytest.raises(MlformError, match=expected):
            stranger.unlock(lock_id, force=True)
        assert stranger.holder() == held
    else:
        stranger.unlock(held.id, force=True)
        assert stranger.holder() is None


def test_force_unlock_without_a_lock_says_there_is_none(remote):
    backend = remote.make()
    with pytest.raises(MlformError, match=f"no lock is recorded on {backend.kind} state"):
        backend.unlock("some-id", force=True)


def test_two_processes_racing_for_the_lock_one_wins(remote):
    """Each racer makes its backend from the endpoint, as a command does."""
    script = remote.make_source + textwrap.dedent("""
        from mlform.engine.state.backend import LockHeld, LockInfo
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


# --- journal ----------------------------------------------------------------------------

def test_journal_entries_are_replayed_on_read_and_cleared_by_write(remote):
    backend = remote.make()
    backend.write(state_with(1, "a"))
    backend.read()
    done = ResourceState("b", "dataset", "null", "id-b", {"source": "a.csv"}, {"uri": "x://y"})
    backend.journal_append(JournalEntry("intent", "b", "lin-1", 1,
                                        resource_to_json(done.with_(status="pending"), "s")))
    backend.journal_append(JournalEntry("done", "b", "lin-1", 1, resource_to_json(done, "s")))
    assert remote.list(KEY + ".journal/") == \
        [f"{KEY}.journal/0000000001.json", f"{KEY}.journal/0000000002.json"]
    replayed = remote.make().read()
    assert replayed.resources["b"].id == "id-b"
    backend.write(replayed.next_serial())
    assert backend.journal_read() == []
    assert remote.list(KEY + ".journal/") == []
    assert "b" in remote.make().read().resources
