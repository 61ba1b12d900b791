"""An apply killed at any moment, or interrupted once, leaves a stack the next apply converges."""

from __future__ import annotations

import random
import signal
import time

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHAINS, CHAIN_LENGTH, INDEPENDENT = 3, 6, 12
RESOURCES = CHAINS * CHAIN_LENGTH + INDEPENDENT


def _spec(latency: float) -> str:
    lines = ["version: 1", "stack: crash", "providers:", f"  null: {{latency: {latency}}}",
             "resources:"]
    for c in range(CHAINS):
        for i in range(CHAIN_LENGTH):
            source = f"${{c{c}_{i - 1}.uri}}" if i else f"c{c}.csv"  # each link needs the last
            lines += [f"  c{c}_{i}:", "    type: dataset", f"    source: {source}"]
    for i in range(INDEPENDENT):
        lines += [f"  solo{i}:", "    type: dataset", f"    source: solo{i}.csv"]
    return "\n".join(lines) + "\n"


def _wait_until_started(stack, proc, seconds: float = 30) -> None:
    journal = stack / ".mlform" / "state.journal"
    deadline = time.monotonic() + seconds
    while not (journal.exists() and journal.stat().st_size > 0):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the apply never started"
        time.sleep(0.02)


def _assert_converges(stack, run_mlform) -> None:
    got = run_mlform(["plan"], stack)
    assert got.returncode in (0, 2) and "Traceback" not in got.stderr, got.stderr
    got = run_mlform(["apply", "--auto-approve", "--parallelism", "10"], stack)
    assert got.returncode == 0, got.stdout + got.stderr
    got = run_mlform(["plan", "--detailed-exitcode"], stack)
    assert got.returncode == 0, got.stdout + got.stderr
    files = list((stack / ".mlform" / "null").glob("*.json"))
    assert len(files) == RESOURCES  # nothing duplicated, nothing orphaned


@pytest.mark.parametrize("seed", range(5), ids=lambda s: f"seed{s}")
def test_kill_at_a_random_moment_then_converge(tmp_path, stack_writer, run_mlform,
                                               spawn_mlform, seed):
    delay = random.Random(seed).uniform(0.0, 1.6)  # the apply needs about 1.8 s
    stack = stack_writer(tmp_path / "stack", _spec(0.3))
    proc = spawn_mlform(["apply", "--auto-approve"], stack)
    _wait_until_started(stack, proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    _assert_converges(stack, run_mlform)


def test_ctrl_c_finishes_in_flight_work_and_records_it(null_stack, run_mlform, spawn_mlform):
    stack = null_stack(_spec(0.6))
    proc = spawn_mlform(["apply", "--auto-approve"], stack)
    _wait_until_started(stack, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    assert "Apply interrupted:" in out and "not started" in out
    assert "Traceback" not in err
    listed = run_mlform(["state", "list"], stack).stdout.splitlines()
    made = list((stack / ".mlform" / "null").glob("*.json"))
    assert 0 < len(listed) < RESOURCES
    assert all(line.endswith("\tready") for line in listed)  # in-flight work finished
    assert len(made) == len(listed)  # and every made resource was recorded
    journal = stack / ".mlform" / "state.journal"
    assert not journal.exists() or journal.stat().st_size == 0
    _assert_converges(stack, run_mlform)
