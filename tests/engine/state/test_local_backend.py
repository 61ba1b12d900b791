import getpass
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.backend import JournalEntry, LockHeld, LockInfo
from mlform.engine.state.local_backend import LocalBackend
from mlform.engine.state.model import ResourceState, State
from mlform.engine.state.statefile import encode, resource_to_json
from mlform.engine.values import Secret

LINEAGE = "lin-1"
SALT = "salt0123456789ab"


def res(name: str, **changes) -> ResourceState:
    base = ResourceState(name=name, type="dataset", provider="local", id=f"local://{name}",
                         inputs={"v": 1}, outputs={"o": 1})
    return base.with_(**changes)


def entry(kind: str, name: str, resource: ResourceState | None = None,
          lineage: str = LINEAGE, serial: int = 3) -> JournalEntry:
    stored = resource_to_json(resource, SALT) if resource else None
    return JournalEntry(kind=kind, name=name, lineage=lineage, base_serial=serial,
                        resource=stored)


BASE = State(lineage=LINEAGE, serial=3, stack="churn", salt=SALT, resources={"old": res("old")})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- files, modes, atomic replace ------------------------------------------------------

def test_nothing_stored_reads_as_none(tmp_path):
    assert LocalBackend(tmp_path).read() is None


def test_files_are_private(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.write(BASE)
    backend.write(BASE.next_serial())
    backend.journal_append(entry("deleted", "old", serial=4))
    info = LockInfo.mine("apply")
    backend.lock(info)
    dot = tmp_path / ".mlform"
    assert mode(dot) == 0o700
    for name in ("state.json", "state.json.backup", "state.journal", "state.lock",
                 "state.lock.json"):
        assert mode(dot / name) == 0o600, name
    backend.unlock(info.id)


def test_write_then_read_round_trips_and_keeps_the_previous_state_as_backup(tmp_path):
    backend = LocalBackend(tmp_path)
    second = BASE.next_serial().with_resource(res("new"))
    backend.write(BASE)
    backend.write(second)
    assert backend.read() == second
    assert backend.backup_path.read_bytes() == encode(BASE)
    assert [p.name for p in backend.state_path.parent.iterdir() if p.suffix == ".tmp"] == []


def test_a_damaged_state_does_not_replace_the_backup(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.write(BASE)
    backend.write(BASE.next_serial())
    backend.state_path.write_text("{ half a state")
    backend.write(BASE.next_serial().next_serial())
    assert backend.backup_path.read_bytes() == encode(BASE)


def test_a_custom_path_keeps_its_companions_beside_it(tmp_path):
    backend = LocalBackend(tmp_path, "states/prod.json")
    backend.write(BASE)
    backend.journal_append(entry("deleted", "old"))
    assert sorted(p.name for p in (tmp_path / "states").iterdir()) == ["prod.journal",
                                                                      "prod.json"]
    assert backend.read().resources == {}


CRASH_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from mlform.engine.state.local_backend import LocalBackend

    target, nth = sys.argv[2], int(sys.argv[3])
    real = getattr(os, target)
    calls = 0

    def dying(*args, **kwargs):
        global calls
        calls += 1
        if calls == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    backend = LocalBackend(Path(sys.argv[1]))
    compacted = backend.read().next_serial()
    setattr(os, target, dying)
    backend.write(compacted)
""")


@pytest.mark.parametrize("target, nth, serial_after", [
    pytest.param("fsync", 1, 3, id="backup-temp-written-not-synced"),
    pytest.param("replace", 1, 3, id="before-backup-replaced"),
    pytest.param("fsync", 3, 3, id="state-temp-written-not-synced"),
    pytest.param("replace", 2, 3, id="between-state-temp-and-replace"),
    pytest.param("truncate", 1, 4, id="after-replace-before-journal-cleared"),
])
def test_a_write_killed_at_any_step_leaves_a_readable_state_with_nothing_lost(
        tmp_path, target, nth, serial_after):
    backend = LocalBackend(tmp_path)
    backend.write(BASE)
    backend.journal_append(entry("intent", "new", res("new", id=None, idempotency_key="k")))
    backend.journal_append(entry("done", "new", res("new")))

    run = subprocess.run([sys.executable, "-c", CRASH_CHILD, str(tmp_path), target, str(nth)],
                         capture_output=True, text=True, timeout=30)

    assert run.returncode == -signal.SIGKILL, run.stderr
    after = backend.read()
    assert after.serial == serial_after
    assert after.resources == {"old": res("old"), "new": res("new")}


# --- journal ---------------------------------------------------------------------------

REPLAY_CASES = [
    pytest.param([entry("intent", "new", res("new", id=None, idempotency_key="k1"))],
                 {"old": res("old"),
                  "new": res("new", id=None, status="pending", idempotency_key="k1")},
                 id="intent-alone-leaves-a-pending-create"),
    # reason: the create may have happened; the key lets the next apply find it
    pytest.param([entry("intent", "new", res("new", id=None, idempotency_key="k1")),
                  entry("done", "new", res("new"))],
                 {"old": res("old"), "new": res("new")},
                 id="intent-then-done-records-the-result"),
    # reason: a finished step is as good as stored
    pytest.param([entry("intent", "old", res("old", inputs={"v": 2}, idempotency_key="k2"))],
                 {"old": res("old", status="pending", idempotency_key="k2")},
                 id="update-intent-keeps-the-known-values"),
    # reason: the update may not have happened, so the new inputs are not known to be live
    pytest.param([entry("intent", "old"), entry("done", "old", res("old", inputs={"v": 2}))],
                 {"old": res("old", inputs={"v": 2})},
                 id="update-done-replaces-the-resource"),
    # reason: done carries the whole resource as the provider left it
    pytest.param([entry("intent", "old"), entry("deleted", "old")], {},
                 id="deleted-removes-it"),
    # reason: the provider confirmed the delete
    pytest.param([entry("intent", "new", res("new", id=None, idempotency_key="k1")),
                  entry("failed", "new")],
                 {"old": res("old")},
                 id="failed-create-without-id-leaves-nothing"),
    # reason: the provider reported failure and no partial resource
    pytest.param([entry("intent", "new", res("new", id=None, idempotency_key="k1")),
                  entry("failed", "new", res("new", id="local://half"))],
                 {"old": res("old"), "new": res("new", id="local://half", status="tainted")},
                 id="failed-create-with-partial-id-is-tainted"),
    # reason: something exists remotely and must be replaced, not forgotten
    pytest.param([entry("intent", "old", res("old", idempotency_key="k2")),
                  entry("failed", "old")],
                 {"old": res("old", status="tainted", idempotency_key="k2")},
                 id="failed-update-taints-the-existing"),
    # reason: the resource still exists but may be half changed
    pytest.param([entry("done", "old", res("old", inputs={"v": 9}), lineage="other")],
                 {"old": res("old")},
                 id="other-lineage-is-ignored"),
    # reason: the entry belongs to another state
    pytest.param([entry("deleted", "old", serial=2)],
                 {"old": res("old")},
                 id="entry-from-before-the-last-write-is-ignored"),
    # reason: the stored state already includes what the older journal described
    pytest.param([entry("done", "new", res("new", inputs={"v": 1})),
                  entry("done", "new", res("new", inputs={"v": 2}))],
                 {"old": res("old"), "new": res("new", inputs={"v": 2})},
                 id="later-entries-win"),
    # reason: entries are applied in the order they were written
    pytest.param([entry("deleted", "old"), entry("intent", "old", res("old", id=None)),
                  entry("failed", "old")],
                 {},
                 id="recreate-failing-after-delete-leaves-nothing"),
    # reason: after the delete only the intent knew the name, and the create failed
]


@pytest.mark.parametrize("entries, expected", REPLAY_CASES)
def test_read_replays_the_journal_on_the_stored_state(tmp_path, entries, expected):
    backend = LocalBackend(tmp_path)
    backend.write(BASE)
    for item in entries:
        backend.journal_append(item)
    state = backend.read()
    assert state.resources == expected
    assert (state.lineage, state.serial) == (LINEAGE, BASE.serial)


def test_an_interrupted_first_apply_is_replayed_without_a_state_file(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.journal_append(entry("intent", "new", res("new", id=None, idempotency_key="k1"),
                                 lineage="first", serial=0))
    state = backend.read()
    assert (state.lineage, state.serial) == ("first", 0)
    assert state.resources == {"new": res("new", id=None, status="pending",
                                          idempotency_key="k1")}
    assert state.salt


def test_a_write_of_the_next_serial_clears_the_journal(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.write(BASE)
    backend.journal_append(entry("deleted", "old"))
    backend.write(backend.read().next_serial())
    assert backend.journal_path.read_bytes() == b""
    assert backend.read().resources == {}


def test_a_torn_last_line_is_ignored_and_the_next_append_starts_clean(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.write(BASE)
    backend.journal_append(entry("done", "new", res("new")))
    with backend.journal_path.open("ab") as f:
        f.write(b'{"kind":"deleted","name":"ol')  # killed in the middle of a write
    assert backend.read().resources == {"old": res("old"), "new": res("new")}

    backend = LocalBackend(tmp_path)  # the next process, after the one that was killed
    backend.journal_append(entry("deleted", "old"))
    lines = backend.journal_path.read_bytes().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["done", "deleted"]
    assert backend.read().resources == {"new": res("new")}


def test_a_damaged_line_before_the_end_is_an_error(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.write(BASE)
    backend.journal_path.write_bytes(b"not json\n")
    backend.journal_append(entry("deleted", "old"))
    with pytest.raises(MlformError) as caught:
        backend.read()
    assert caught.value.diagnostics[0].summary == (
        f"apply journal line {backend.journal_path}:1 is damaged: not valid JSON: "
        "expecting value at column 1")


def test_a_secret_left_in_a_journal_entry_is_refused(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.journal_append(entry("deleted", "old"))
    leaking = JournalEntry(kind="done", name="x", lineage=LINEAGE, base_serial=3,
                           resource={"inputs": {"token": Secret("hunter2")}})
    with pytest.raises(TypeError, match="sensitive"):
        backend.journal_append(leaking)
    assert [e.kind for e in backend.journal_read()] == ["deleted"]
    assert b"hunter2" not in backend.journal_path.read_bytes()


# --- lock ------------------------------------------------------------------------------

HOLDER_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mlform.engine.state.backend import LockInfo
    from mlform.engine.state.local_backend import LocalBackend

    LocalBackend(Path(sys.argv[1])).lock(LockInfo.mine("apply --auto-approve"))
    print("locked", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def holder_process(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", HOLDER_CHILD, str(tmp_path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "locked\n"
        yield child
    finally:
        child.kill()
        child.wait()


def record(backend: LocalBackend, **fields) -> LockInfo:
    info = LockInfo(**{**LockInfo.mine("apply").to_json(), **fields})
    backend.state_path.parent.mkdir(parents=True, exist_ok=True)
    (backend.state_path.parent / "state.lock.json").write_text(json.dumps(info.to_json()))
    return info


def test_a_running_holder_refuses_others_and_is_named(tmp_path, holder_process):
    backend = LocalBackend(tmp_path)
    started = time.monotonic()
    with pytest.raises(LockHeld) as caught:
        backend.lock(LockInfo.mine("plan"), timeout=0.2)
    assert time.monotonic() - started >= 0.2
    holder = caught.value.holder
    assert (holder.pid, holder.host, holder.user, holder.command) == (
        holder_process.pid, socket.gethostname(), getpass.getuser(), "apply --auto-approve")
    assert f"(pid {holder_process.pid}) running 'apply --auto-approve'" in str(caught.value)
    assert caught.value.where == f"local state '{backend.state_path}'"


def test_a_killed_holder_frees_the_lock_at_once(tmp_path, holder_process):
    holder_process.send_signal(signal.SIGKILL)
    holder_process.wait()
    backend = LocalBackend(tmp_path)
    mine = LockInfo.mine("apply")
    backend.lock(mine, timeout=0)
    assert backend.holder() == mine


def test_force_unlock_refuses_while_the_holder_runs(tmp_path, holder_process):
    backend = LocalBackend(tmp_path)
    held = backend.holder()
    with pytest.raises(MlformError) as caught:
        backend.unlock(held.id, force=True)
    assert caught.value.diagnostics[0].summary == (
        f"lock ID '{held.id}' is held by a running process")
    assert backend.holder() == held


def test_a_record_naming_a_dead_local_pid_does_not_block(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    backend = LocalBackend(tmp_path)
    record(backend, pid=int(gone.stdout), host=socket.gethostname(), id="stale")
    mine = LockInfo.mine("apply")
    backend.lock(mine, timeout=0)
    assert backend.holder() == mine


def test_a_record_from_another_host_blocks_until_force_unlocked(tmp_path):
    backend = LocalBackend(tmp_path)
    remote = record(backend, host="build-agent-7", pid=4242, id="remote-id")
    with pytest.raises(LockHeld) as caught:
        backend.lock(LockInfo.mine("apply"), timeout=0)
    assert caught.value.holder == remote

    with pytest.raises(MlformError) as wrong:
        backend.unlock("not-the-id", force=True)
    assert wrong.value.render() == (
        f"error: lock ID 'not-the-id' does not match the lock on local state "
        f"'{backend.state_path}'\n"
        f"  = the lock is {remote.describe()}\n"
        "help: to remove that lock, run: mlform state unlock remote-id")

    backend.unlock("remote-id", force=True)
    assert backend.holder() is None
    backend.lock(LockInfo.mine("apply"), timeout=0)


def test_unlock_frees_the_lock_for_the_next_command(tmp_path):
    first, second = LocalBackend(tmp_path), LocalBackend(tmp_path)
    mine = LockInfo.mine("apply")
    first.lock(mine)
    with pytest.raises(LockHeld):
        second.lock(LockInfo.mine("plan"), timeout=0)
    first.unlock(mine.id)
    assert first.holder() is None
    second.lock(LockInfo.mine("plan"), timeout=0)


def test_unlocking_a_lock_not_held_here_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="not held by this process"):
        LocalBackend(tmp_path).unlock("nope")


def test_the_holder_record_is_left_alone_when_another_backend_holds(tmp_path):
    first = LocalBackend(tmp_path)
    mine = LockInfo.mine("apply")
    first.lock(mine)
    with pytest.raises(LockHeld):
        LocalBackend(tmp_path).lock(LockInfo.mine("plan"), timeout=0)
    assert first.holder() == mine
    assert os.path.exists(first.state_path.parent / "state.lock.json")
    first.unlock(mine.id)


# --- damaged or misplaced files --------------------------------------------------------

@pytest.mark.parametrize("backup, suggested", [
    pytest.param(None, False, id="no-backup"),
    pytest.param(b"[]", False, id="damaged-backup"),
    pytest.param(encode(BASE), True, id="readable-backup"),
])
def test_a_damaged_state_suggests_only_a_readable_backup(tmp_path, backup, suggested):
    backend = LocalBackend(tmp_path)
    backend.write(BASE)
    backend.state_path.write_text("{oops")
    if backup is not None:
        backend.backup_path.write_bytes(backup)
    with pytest.raises(MlformError) as caught:
        backend.read()
    help_text = caught.value.diagnostics[0].help
    assert (f"copy '{backend.backup_path}' over" in help_text) is suggested
    assert ("there is no backup of it to restore" in help_text) is not suggested


@pytest.mark.parametrize("operation", ["read", "write", "lock"])
def test_a_state_path_that_is_a_directory_is_a_clear_error(tmp_path, operation):
    backend = LocalBackend(tmp_path)
    backend.state_path.mkdir(parents=True)
    call = {"read": backend.read, "write": lambda: backend.write(BASE),
            "lock": lambda: backend.lock(LockInfo.mine("apply"))}[operation]
    with pytest.raises(MlformError) as caught:
        call()
    assert caught.value.diagnostics[0].summary == \
        f"'{backend.state_path}' is a directory, but the state must be a file there"


def test_reading_tightens_loose_modes(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.write(BASE)
    backend.write(BASE.next_serial())
    (tmp_path / ".mlform").chmod(0o755)
    for path in (backend.state_path, backend.backup_path):
        path.chmod(0o644)
    backend.read()
    assert mode(tmp_path / ".mlform") == 0o700
    assert mode(backend.state_path) == mode(backend.backup_path) == 0o600


def test_a_directory_the_user_named_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    backend = LocalBackend(tmp_path, "shared/state.json")
    backend.write(BASE)
    assert mode(shared) == 0o750 and mode(backend.state_path) == 0o600
