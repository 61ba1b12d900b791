"""The GCS state backend through the `mlform` command, on the GCS emulator: concurrent applies,
an apply killed with its lock held, a state written behind a running apply's back, and
`mlform state migrate` from the local backend."""

from __future__ import annotations

import getpass
import json
import signal
import socket
import time
from types import SimpleNamespace

import pytest
from mlform.engine.state.backend import LockInfo
from mlform.engine.state.gcs_backend import GcsBackend

pytestmark = pytest.mark.e2e

PREFIX = "stacks/cas"
NAME = f"{PREFIX}/state.json"
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
def bucket(gcs, gcs_bucket, no_gcp_credentials):
    return gcs.client().bucket(gcs_bucket)


@pytest.fixture
def stack(gcs, bucket, null_stack, run_mlform):
    """A stack (`stack.dir`) on the gcs backend (anonymous, through the endpoint override),
    with `a` applied; `stack.slow(latency)` adds `b`, whose create takes `latency` seconds."""
    backend = (f"backend: {{type: gcs, bucket: {bucket.name}, prefix: {PREFIX}, "
               f"endpoint_url: '{gcs.url}'}}")
    spec = SPEC.replace("BACKEND", backend)
    directory = null_stack(spec)
    got = run_mlform(["apply", "--auto-approve"], directory)
    assert got.returncode == 0, got.stderr
    assert sorted(stored(bucket)["resources"]) == ["a"]

    def slow(latency: float) -> None:
        (directory / "mlform.yaml").write_text(spec + SLOW_B.replace("LATENCY", str(latency)))

    return SimpleNamespace(dir=directory, slow=slow)


def stored(bucket, name: str = NAME) -> dict | None:
    blob = bucket.get_blob(name)
    return None if blob is None else json.loads(blob.download_as_bytes())


def wait_inside_apply(bucket, proc, seconds: float = 30) -> dict:
    """Until the background apply holds the lock and has journalled its first step; its lock."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lock = stored(bucket, NAME + ".lock")
        if lock is not None and any(bucket.list_blobs(prefix=NAME + ".journal/")):
            return lock
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the background apply never started its resource")


def test_a_second_apply_is_refused_naming_the_holder(stack, bucket, run_mlform, held_apply):
    stack.slow(1)
    first = held_apply(stack.dir)  # inside its resource until released: no race with load
    lock = wait_inside_apply(bucket, first)
    assert lock["pid"] == first.pid and lock["command"] == "apply"

    second = run_mlform(["apply", "--auto-approve"], stack.dir)
    assert second.returncode == 1
    assert second.stderr.startswith(
        f"error: the state is locked: ID {lock['id']}, held by "
        f"{getpass.getuser()}@{socket.gethostname()} (pid {first.pid}) running 'apply' since ")
    assert f"  = lock: gcs state 'gs://{bucket.name}/{NAME}'\n" in second.stderr
    assert "Traceback" not in second.stderr

    first.release()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert sorted(stored(bucket)["resources"]) == ["a", "b"]
    assert stored(bucket, NAME + ".lock") is None


def test_a_killed_apply_leaves_a_readable_state_and_state_unlock_removes_its_lock(
        stack, bucket, run_mlform, spawn_mlform):
    stack.slow(60)
    killed = spawn_mlform(["apply", "--auto-approve"], stack.dir)
    lock = wait_inside_apply(bucket, killed)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)

    # The stored state is the last one written, whole; the journal adds what was started.
    assert sorted(stored(bucket)["resources"]) == ["a"]
    listed = run_mlform(["state", "list"], stack.dir)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(row[0], row[-1]) for row in rows] == [("a", "ready"), ("b", "pending")]

    refused = run_mlform(["apply", "--auto-approve"], stack.dir)
    assert refused.returncode == 1
    assert f"(pid {killed.pid}) running 'apply'" in refused.stderr
    assert f"run 'mlform state unlock {lock['id']}'" in refused.stderr

    released = run_mlform(["state", "unlock", lock["id"]], stack.dir)
    assert released.returncode == 0, released.stderr
    assert released.stdout.startswith(f"Released lock {lock['id']} (ID {lock['id']}, held by ")
    assert stored(bucket, NAME + ".lock") is None

    stack.slow(0)
    again = run_mlform(["apply", "--auto-approve"], stack.dir)
    assert again.returncode == 0, again.stderr
    assert sorted(stored(bucket)["resources"]) == ["a", "b"]
    plan = run_mlform(["plan", "--detailed-exitcode"], stack.dir)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_a_state_written_while_an_apply_ran_is_not_overwritten(gcs, stack, bucket,
                                                               held_apply):
    """Someone removes a running apply's lock and writes the state: the apply's final write
    is refused (compare-and-swap on the generation it read), theirs stands."""
    stack.slow(1)
    first = held_apply(stack.dir)
    lock = wait_inside_apply(bucket, first)
    other = GcsBackend(bucket.name, PREFIX, client=gcs.client())
    other.unlock(lock["id"], force=True)
    mine = LockInfo.mine("state rm")
    other.lock(mine)
    other.write(other.read().without("a").next_serial())
    other.unlock(mine.id)
    theirs = stored(bucket)
    assert first.poll() is None, "the apply ended before its state was written behind its back"

    first.release()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 1
    assert err.startswith(
        f"error: the state in gcs state 'gs://{bucket.name}/{NAME}' was written by someone "
        "else since this command read it; this command's state was not written\n")
    assert "Traceback" not in err
    assert stored(bucket) == theirs
    assert "a" not in theirs["resources"]


def test_local_to_gcs_is_refused_then_migrated(gcs, bucket, null_stack, run_mlform):
    directory = null_stack(SPEC.replace("BACKEND\n", ""))
    assert run_mlform(["apply", "--auto-approve"], directory).returncode == 0
    (directory / "mlform.yaml").write_text(SPEC.replace(
        "BACKEND", f"backend: {{type: gcs, bucket: {bucket.name}, prefix: {PREFIX}/, "
                   f"endpoint_url: '{gcs.url}'}}"))
    where = f"gcs state 'gs://{bucket.name}/{NAME}'"

    refused = run_mlform(["plan"], directory)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "error: the backend changed, but the state is still in local state "
        "'.mlform/state.json' (1 resource)\n  --> mlform.yaml:3:1\n")
    assert f"  = mlform.yaml now points at {where}; " in refused.stderr
    assert stored(bucket) is None

    local = json.loads((directory / ".mlform" / "state.json").read_text())
    got = run_mlform(["state", "migrate"], directory)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith(
        f"Copied the state (1 resource, lineage {local['lineage']}, serial "
        f"{local['serial']}) from local state '.mlform/state.json' to {where}.\n")
    assert stored(bucket) == local
    assert stored(bucket, NAME + ".lock") is None
    plan = run_mlform(["plan", "--detailed-exitcode"], directory)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    record = json.loads((directory / ".mlform" / "backend.json").read_text())
    assert record["backend"] == {"type": "gcs", "bucket": bucket.name, "prefix": PREFIX,
                                 "endpoint_url": gcs.url}
