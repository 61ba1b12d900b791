"""The state lock through the command: who holds it is named, and --lock-timeout waits."""

from __future__ import annotations

import getpass
import socket
import stat
import time

import pytest

pytestmark = pytest.mark.e2e

SPEC = """\
version: 1
stack: locks
providers:
  null: {}
resources:
  slow:
    type: dataset
    source: slow.csv
    provider_options: {null: {latency: LATENCY}}
"""


def _wait_for_lock(stack, proc, seconds: float = 20) -> None:
    """Until the background apply is inside its provider call (its lock taken)."""
    deadline = time.monotonic() + seconds
    journal = stack / ".mlform" / "state.journal"
    while time.monotonic() < deadline:
        if journal.exists() and journal.stat().st_size > 0:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the first apply never started its resource")


def test_concurrent_apply_is_refused_naming_the_holder(null_stack, run_mlform, spawn_mlform):
    stack = null_stack(SPEC.replace("LATENCY", "3"))
    first = spawn_mlform(["apply", "--auto-approve"], stack)
    _wait_for_lock(stack, first)
    got = run_mlform(["apply", "--auto-approve"], stack)
    assert got.returncode == 1
    assert "error: the state is locked:" in got.stderr
    assert f"(pid {first.pid})" in got.stderr
    assert f"held by {getpass.getuser()}@{socket.gethostname()}" in got.stderr
    assert "running 'apply'" in got.stderr
    assert "--lock-timeout" in got.stderr and "Traceback" not in got.stderr
    assert first.wait(timeout=30) == 0
    state = stack / ".mlform" / "state.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_lock_timeout_waits_for_the_holder(null_stack, run_mlform, spawn_mlform):
    stack = null_stack(SPEC.replace("LATENCY", "1.5"))
    first = spawn_mlform(["apply", "--auto-approve"], stack)
    _wait_for_lock(stack, first)
    got = run_mlform(["plan", "--detailed-exitcode", "--lock-timeout", "30s"], stack)
    assert first.wait(timeout=30) == 0
    assert got.returncode == 0, got.stderr  # it waited, then saw the finished apply


def test_read_only_commands_do_not_need_the_lock(null_stack, run_mlform, spawn_mlform):
    stack = null_stack(SPEC.replace("LATENCY", "3"))
    first = spawn_mlform(["apply", "--auto-approve"], stack)
    _wait_for_lock(stack, first)
    for args in (["validate"], ["show"], ["state", "list"], ["graph"]):
        got = run_mlform(args, stack)
        assert got.returncode == 0, (args, got.stderr)
    first.wait(timeout=30)
