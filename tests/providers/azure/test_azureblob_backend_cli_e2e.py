"""The Azure Blob state backend through the `mlform` command, on Azurite: concurrent applies,
an apply killed half way through writing the state, a state written behind a running apply's
back, and `mlform state migrate` from the local backend."""

from __future__ import annotations

import getpass
import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import pytest
from mlform.engine.state.azureblob_backend import AzureBlobBackend
from mlform.engine.state.backend import LockInfo

pytestmark = pytest.mark.e2e

KEY = "stacks/cas/state.json"
SPEC = """\
version: 1
stack: cas
BACKEND
providers:
  null: {}
resources:
  a:
    type: dataset
    source: a.csv
"""
SLOW_B = """\
  b:
    type: dataset
    source: b.csv
    provider_options: {null: {latency: LATENCY}}
"""


@pytest.fixture
def signed_in(azurite, monkeypatch):
    """The commands a test runs sign in to Azurite through the connection string, as a user of
    the emulator does (they inherit this process's environment)."""
    monkeypatch.delenv("AZURE_STORAGE_KEY", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)


@pytest.fixture
def container(azurite, blob_container, signed_in):
    return azurite.client().get_container_client(blob_container)


def backend_line(azurite, container) -> str:
    return (f"backend: {{type: azureblob, storage_account: {azurite.account_name}, "
            f"container: {container.container_name}, key: {KEY}, "
            f"account_url: '{azurite.url}'}}")


@pytest.fixture
def stack(azurite, container, null_stack, run_mlform):
    """A stack (`stack.dir`) on the azureblob backend (Azurite, through `account_url`), with `a`
    applied; `stack.slow(latency)` adds `b`, whose create takes `latency` seconds."""
    spec = SPEC.replace("BACKEND", backend_line(azurite, container))
    directory = null_stack(spec)
    got = run_mlform(["apply", "--auto-approve"], directory)
    assert got.returncode == 0, got.stderr
    assert sorted(stored(container)["resources"]) == ["a"]

    def slow(latency: float) -> None:
        (directory / "mlform.yaml").write_text(spec + SLOW_B.replace("LATENCY", str(latency)))

    return SimpleNamespace(dir=directory, slow=slow)


def stored(container, name: str = KEY) -> dict | None:
    blob = container.get_blob_client(name)
    return json.loads(blob.download_blob().readall()) if blob.exists() else None


def wait_inside_apply(container, proc, seconds: float = 120) -> dict:
    """Until the background apply holds the lock and has journalled its first step; its lock."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lock = stored(container, KEY + ".lock")
        if lock is not None and any(container.list_blobs(name_starts_with=KEY + ".journal/")):
            return lock
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the background apply never started its resource")


def test_a_second_apply_is_refused_naming_the_holder(stack, azurite, container, run_mlform,
                                                     held_apply):
    stack.slow(1)
    first = held_apply(stack.dir)
    lock = wait_inside_apply(container, first)
    assert lock["pid"] == first.pid and lock["command"] == "apply"

    second = run_mlform(["apply", "--auto-approve"], stack.dir)
    assert second.returncode == 1
    assert second.stderr.startswith(
        f"error: the state is locked: ID {lock['id']}, held by "
        f"{getpass.getuser()}@{socket.gethostname()} (pid {first.pid}) running 'apply' since ")
    assert (f"  = lock: azureblob state '{azurite.url}/{container.container_name}/{KEY}'\n"
            in second.stderr)
    assert "Traceback" not in second.stderr

    first.release()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert sorted(stored(container)["resources"]) == ["a", "b"]
    assert stored(container, KEY + ".lock") is None


def test_an_apply_killed_while_writing_the_state_leaves_it_readable_and_unlock_frees_it(
        stack, container, run_mlform):
    """`mlform apply` killed with SIGKILL half way through sending the new state: the blob is
    still the previous state, whole; the journal gives back what the apply did; its lock is
    stale until `mlform state unlock`."""
    stack.slow(0)
    before = stored(container)
    apply_and_die = textwrap.dedent("""
        import http.client, os, signal, sys
        send = http.client.HTTPConnection.send

        def send_half_then_die(self, data):
            # The state (not a journal entry, not the backup of the old state) that holds b.
            if isinstance(data, bytes | bytearray) and b'"format_version"' in data \\
                    and b'"b.csv"' in data:
                send(self, data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            return send(self, data)

        http.client.HTTPConnection.send = send_half_then_die
        sys.argv = ["mlform", "apply", "--auto-approve"]
        from mlform.engine.cli.main import main
        main()
    """)
    killed = subprocess.run([sys.executable, "-c", apply_and_die], cwd=stack.dir,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert stored(container) == before

    listed = run_mlform(["state", "list"], stack.dir)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(row[0], row[-1]) for row in rows] == [("a", "ready"), ("b", "ready")]

    lock = stored(container, KEY + ".lock")
    refused = run_mlform(["apply", "--auto-approve"], stack.dir)
    assert refused.returncode == 1
    assert f"(pid {lock['pid']}) running 'apply'" in refused.stderr
    assert f"run 'mlform state unlock {lock['id']}'" in refused.stderr

    released = run_mlform(["state", "unlock", lock["id"]], stack.dir)
    assert released.returncode == 0, released.stderr
    assert released.stdout.startswith(f"Released lock {lock['id']} (ID {lock['id']}, held by ")
    assert stored(container, KEY + ".lock") is None

    # b was created before the kill: the journal holds it, so there is nothing to apply.
    again = run_mlform(["apply", "--auto-approve"], stack.dir)
    assert again.returncode == 0, again.stderr
    assert "No changes." in again.stdout
    assert stored(container, KEY + ".lock") is None


def test_a_state_written_while_an_apply_ran_is_not_overwritten(azurite, stack, container,
                                                               held_apply):
    """Someone removes a running apply's lock and writes the state: the apply's final write
    is refused (conditional on the etag it read), theirs stands."""
    stack.slow(1)
    first = held_apply(stack.dir)
    lock = wait_inside_apply(container, first)
    other = AzureBlobBackend(azurite.account_name, container.container_name, KEY,
                             account_url=azurite.url)
    other.unlock(lock["id"], force=True)
    mine = LockInfo.mine("state rm")
    other.lock(mine)
    other.write(other.read().without("a").next_serial())
    other.unlock(mine.id)
    theirs = stored(container)

    first.release()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 1
    assert err.startswith(
        f"error: the state in azureblob state '{azurite.url}/{container.container_name}/{KEY}' "
        "was written by someone else since this command read it; this command's state was "
        "not written\n")
    assert "Traceback" not in err
    assert stored(container) == theirs
    assert "a" not in theirs["resources"]


def test_local_to_azureblob_is_refused_then_migrated(azurite, container, null_stack,
                                                     run_mlform):
    directory = null_stack(SPEC.replace("BACKEND\n", ""))
    assert run_mlform(["apply", "--auto-approve"], directory).returncode == 0
    (directory / "mlform.yaml").write_text(
        SPEC.replace("BACKEND", backend_line(azurite, container)))
    where = f"azureblob state '{azurite.url}/{container.container_name}/{KEY}'"

    refused = run_mlform(["plan"], directory)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "error: the backend changed, but the state is still in local state "
        "'.mlform/state.json' (1 resource)\n  --> mlform.yaml:3:1\n")
    assert f"  = mlform.yaml now points at {where}; " in refused.stderr
    assert stored(container) is None

    local = json.loads((directory / ".mlform" / "state.json").read_text())
    got = run_mlform(["state", "migrate"], directory)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith(
        f"Copied the state (1 resource, lineage {local['lineage']}, serial "
        f"{local['serial']}) from local state '.mlform/state.json' to {where}.\n")
    assert stored(container) == local
    assert stored(container, KEY + ".lock") is None
    plan = run_mlform(["plan", "--detailed-exitcode"], directory)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    record = json.loads((directory / ".mlform" / "backend.json").read_text())
    assert record["backend"] == {"type": "azureblob", "storage_account": azurite.account_name,
                                 "container": container.container_name, "key": KEY,
                                 "account_url": azurite.url}
