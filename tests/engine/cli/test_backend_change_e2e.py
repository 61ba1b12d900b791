"""A changed `backend:` through the command: refused while the old state holds resources,
`mlform state migrate` moves it (both backends locked), `--reconfigure` leaves it behind."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from null_pipeline import pipeline_spec

pytestmark = pytest.mark.e2e

SPEC = pipeline_spec("moving")
MOVED = SPEC.replace("stack: moving\n", "stack: moving\nbackend: {type: local, path: "
                                         "elsewhere/state.json}\n")


def state_doc(path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def applied(null_stack, run_mlform):
    stack = null_stack(SPEC)
    got = run_mlform(["apply", "--auto-approve"], stack)
    assert got.returncode == 0, got.stderr
    return stack


@pytest.fixture
def moved(applied):
    """The applied stack with its `backend:` pointed at another path."""
    (applied / "mlform.yaml").write_text(MOVED)
    return applied


@pytest.mark.parametrize("args", [
    ["plan"], ["apply", "--auto-approve"], ["state", "list"], ["show"], ["refresh"],
    ["destroy", "--auto-approve"],
], ids=lambda args: args[0] if args[0] != "state" else "state-list")
def test_every_command_that_reads_state_is_refused(moved, run_mlform, args):
    got = run_mlform(args, moved)
    assert got.returncode == 1, got.stdout
    assert got.stderr.startswith(
        "error: the backend changed, but the state is still in local state "
        "'.mlform/state.json' (2 resources)\n"
        "  --> mlform.yaml:3:1\n"
        "  |\n"
        "3 | backend: {type: local, path: elsewhere/state.json}\n"
        "  | ^^^^^^^\n"
        "  = mlform.yaml now points at local state 'elsewhere/state.json'; this stack last "
        "used local state '.mlform/state.json' (lineage ")
    assert got.stderr.endswith(
        "  = reading the new backend instead would plan every resource as new\n"
        "help: copy the state to the new backend with 'mlform state migrate'; to leave it "
        "behind and start from what the new backend holds (the live resources stay, "
        "unmanaged), run 'mlform state migrate --reconfigure'; or set 'backend:' back\n")
    assert not (moved / "elsewhere" / "state.json").exists()
    assert len(list((moved / ".mlform" / "null").glob("*.json"))) == 2  # nothing created


def test_migrate_copies_the_state_keeping_lineage_and_serial(moved, run_mlform):
    before = state_doc(moved / ".mlform" / "state.json")
    got = run_mlform(["state", "migrate"], moved)
    assert got.returncode == 0, got.stderr
    assert got.stdout == (
        f"Copied the state (2 resources, lineage {before['lineage']}, serial "
        f"{before['serial']}) from local state '.mlform/state.json' to local state "
        "'elsewhere/state.json'.\n"
        "The copy in local state '.mlform/state.json' is no longer used; remove it once "
        "'mlform plan' shows what you expect.\n")
    after = state_doc(moved / "elsewhere" / "state.json")
    assert after == before
    assert run_mlform(["plan", "--detailed-exitcode"], moved).returncode == 0
    audit = [json.loads(line) for line in
             (moved / ".mlform" / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["command"] == "state migrate" and audit[-1]["detail"]["copied"] is True
    again = run_mlform(["state", "migrate"], moved)
    assert again.stdout == ("Nothing to migrate: this stack already uses local state "
                            "'elsewhere/state.json'.\n")


def test_migrate_then_apply_changes_only_the_new_backend(moved, run_mlform):
    assert run_mlform(["state", "migrate"], moved).returncode == 0
    old = (moved / ".mlform" / "state.json").read_bytes()
    (moved / "mlform.yaml").write_text(MOVED.replace("target: y", "target: y\n    seed: 7"))
    got = run_mlform(["apply", "--auto-approve"], moved)
    assert got.returncode == 0, got.stderr
    assert state_doc(moved / "elsewhere" / "state.json")["serial"] == \
        state_doc(moved / ".mlform" / "state.json")["serial"] + 1
    assert (moved / ".mlform" / "state.json").read_bytes() == old


def test_reconfigure_starts_from_the_new_backend_and_leaves_the_old_state(moved, run_mlform):
    old = (moved / ".mlform" / "state.json").read_bytes()
    got = run_mlform(["state", "migrate", "--reconfigure"], moved)
    assert got.returncode == 0, got.stderr
    assert got.stdout == (
        "This stack now uses local state 'elsewhere/state.json' (0 resources). The state in "
        "local state '.mlform/state.json' was left where it is and is no longer used.\n")
    assert (moved / ".mlform" / "state.json").read_bytes() == old
    plan = run_mlform(["plan", "--detailed-exitcode"], moved)
    assert plan.returncode == 2, plan.stderr  # everything is new to the new backend


def test_an_empty_previous_backend_lets_the_change_through(null_stack, run_mlform):
    stack = null_stack(SPEC)
    assert run_mlform(["plan"], stack).returncode == 0   # records the default backend
    (stack / "mlform.yaml").write_text(MOVED)
    got = run_mlform(["apply", "--auto-approve"], stack)
    assert got.returncode == 0, got.stderr
    assert set(state_doc(stack / "elsewhere" / "state.json")["resources"]) == {"data", "train"}


def test_a_stack_from_before_the_record_is_still_protected(moved, run_mlform):
    (moved / ".mlform" / "backend.json").unlink()
    got = run_mlform(["plan"], moved)
    assert got.returncode == 1
    assert "error: the backend changed, but the state is still in local state " \
           "'.mlform/state.json' (2 resources)" in got.stderr


def test_migrate_refuses_a_target_holding_another_state_unless_forced(moved, run_mlform,
                                                                      stack_writer, tmp_path):
    other = stack_writer(tmp_path / "other", pipeline_spec("other"))
    assert run_mlform(["apply", "--auto-approve"], other).returncode == 0
    (moved / "elsewhere").mkdir(mode=0o700)
    (moved / "elsewhere" / "state.json").write_bytes(
        (other / ".mlform" / "state.json").read_bytes())
    theirs = state_doc(moved / "elsewhere" / "state.json")

    got = run_mlform(["state", "migrate"], moved)
    assert got.returncode == 1
    assert got.stderr.startswith(
        "error: local state 'elsewhere/state.json' already holds another state "
        f"(lineage {theirs['lineage']}, serial 1, 2 resources)\n")
    assert got.stderr.endswith(
        "help: point 'backend:' at an empty location; or, if the state there is not needed, "
        "run 'mlform state migrate --force' to overwrite it (the backend keeps it as its "
        "backup)\n")
    assert state_doc(moved / "elsewhere" / "state.json") == theirs

    forced = run_mlform(["state", "migrate", "--force"], moved)
    assert forced.returncode == 0, forced.stderr
    assert state_doc(moved / "elsewhere" / "state.json") == \
        state_doc(moved / ".mlform" / "state.json")
    assert state_doc(moved / "elsewhere" / "state.json.backup") == theirs


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mlform.engine.state.backend import LockInfo
    from mlform.engine.state.local_backend import LocalBackend
    backend = LocalBackend(Path(sys.argv[1]), sys.argv[2])
    info = LockInfo.mine("apply")
    backend.lock(info)
    print("locked", flush=True)
    sys.stdin.readline()  # held until the test says to let go
    backend.unlock(info.id)
""")


@pytest.mark.parametrize("locked_path", [".mlform/state.json", "elsewhere/state.json"],
                         ids=["source-locked", "target-locked"])
def test_migrate_is_refused_while_either_backend_is_locked_and_can_wait(
        moved, run_mlform, spawn_mlform, locked_path):
    # The holder keeps the lock until told to let go, not for a fixed time: on a loaded
    # machine a command can take seconds just to start.
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(moved), locked_path],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        refused = run_mlform(["state", "migrate"], moved)
        assert refused.returncode == 1
        assert refused.stderr.startswith("error: the state is locked: ID ")
        assert f"(pid {holder.pid}) running 'apply'" in refused.stderr
        assert f"  = lock: local state '{locked_path}'\n" in refused.stderr
        assert not (moved / "elsewhere" / "state.json").exists()
        waiting = spawn_mlform(["state", "migrate", "--lock-timeout", "120s"], moved)
        time.sleep(1.0)
        assert waiting.poll() is None  # it cannot finish while the lock is held
        assert not (moved / "elsewhere" / "state.json").exists()
        holder.stdin.write("go\n")
        holder.stdin.flush()
        _, errors = waiting.communicate(timeout=180)
        assert waiting.returncode == 0, errors
        assert holder.wait(timeout=30) == 0
        assert state_doc(moved / "elsewhere" / "state.json")["resources"].keys() == \
            {"data", "train"}
    finally:
        holder.kill()
        holder.communicate()
