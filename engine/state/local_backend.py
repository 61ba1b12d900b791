"""The local backend: state in `.mlform/state.json` beside the stack, kept safe from crashes.

Next to the state file live its backup (`state.json.backup`, the state before
the last write), the apply journal (`state.journal`) and the lock
(`state.lock`, `state.lock.json`); all are mode 0600 in a 0700 directory.

A write goes to a temporary file that is fsynced and then renamed over the
state, so whatever instant the process dies at, `state.json` is either the
old state or the new one. During an apply each step is one fsynced journal
line instead of a state rewrite; `read` replays the lines that belong to the
stored state (same lineage, based on its serial), and a `write` of the next
serial makes them history.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from ..diagnostics import MlformError
from .backend import Backend, JournalEntry, LockInfo
from .lock import StateLock
from .model import State
from .private import DIR_MODE, FILE_MODE, PRIVATE_DIR_NAME, private_dir, tighten
from .statefile import decode, encode, json_default, resource_from_json, resource_problems

DEFAULT_PATH = ".mlform/state.json"
JOURNAL_KINDS = ("intent", "done", "deleted", "failed")


class LocalBackend(Backend):
    def __init__(self, stack_dir: Path, path: str | None = None):
        self.state_path = Path(stack_dir) / (path or DEFAULT_PATH)
        self.backup_path = self.state_path.with_name(self.state_path.name + ".backup")
        self.journal_path = self.state_path.with_suffix(".journal")
        self._lock = StateLock(self.state_path.with_suffix(".lock"),
                               self.state_path.with_suffix(".lock.json"), self.describe())
        self._fd: int | None = None
        self._append_mutex = threading.Lock()
        self._sync_mutex = threading.Lock()
        self._written = 0
        self._synced = 0

    def describe(self) -> str:
        return f"local state '{self.state_path}'"

    def read(self) -> State | None:
        self._tighten()
        entries = self.journal_read()
        data = _read_if_exists(self.state_path)
        if data is None:
            return replay_journal(None, entries)
        return replay_journal(decode(data, str(self.state_path), self._good_backup()), entries)

    def _good_backup(self) -> str | None:
        """The backup to suggest when the state is damaged: only one that exists and reads."""
        try:
            data = _read_if_exists(self.backup_path)
        except MlformError:
            return None
        return str(self.backup_path) if data is not None and _is_readable_state(data) else None

    def write(self, state: State) -> None:
        """Store `state` (normally the serial after the one read, so the journal becomes stale)."""
        self._ensure_dir()
        self._tighten()
        data = encode(state)
        previous = _read_if_exists(self.state_path)
        if previous is not None and _is_readable_state(previous):
            # A damaged state file must not push the last good copy out of the backup.
            write_atomically(self.backup_path, previous)
        write_atomically(self.state_path, data)
        with contextlib.suppress(FileNotFoundError):
            os.truncate(self.journal_path, 0)

    def lock(self, info: LockInfo, timeout: float = 0.0) -> None:
        self._ensure_dir()
        self._lock.acquire(info, timeout)

    def unlock(self, lock_id: str, force: bool = False) -> None:
        if force:
            self._lock.force_release(lock_id)
        else:
            self._lock.release(lock_id)

    def holder(self) -> LockInfo | None:
        return self._lock.holder()

    def journal_append(self, entry: JournalEntry) -> None:
        """Durable when it returns. Concurrent appenders share fsyncs (group commit): each
        waits only until some fsync has covered its own line."""
        line = journal_line(entry)
        with self._append_mutex:
            fd = self._journal_fd()
            _write_all(fd, line)
            self._written += 1
            ticket = self._written
        with self._sync_mutex:
            if self._synced >= ticket:
                return
            covered = self._written
            os.fsync(fd)
            self._synced = covered

    def _journal_fd(self) -> int:
        """The journal, opened once per backend (O_APPEND keeps working after truncation)."""
        if self._fd is None:
            self._ensure_dir()
            created = not self.journal_path.exists()
            self._fd = os.open(self.journal_path,
                               os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            _drop_torn_tail(self._fd)
            if created:
                fsync_dir(self.journal_path.parent)
        return self._fd

    def journal_read(self) -> list[JournalEntry]:
        data = _read_if_exists(self.journal_path) or b""
        # The part after the last newline is a line whose append never returned.
        complete = data[: data.rfind(b"\n") + 1]
        return [parse_journal_line(line, f"{self.journal_path}:{number}")
                for number, line in enumerate(complete.split(b"\n")[:-1], 1)]

    def _ensure_dir(self) -> None:
        parent = self.state_path.parent
        if parent.name == PRIVATE_DIR_NAME:
            private_dir(parent)
        else:
            # A directory the user named may be shared on purpose: create it private,
            # but leave the mode of an existing one alone (the files in it are 0600).
            parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if self.state_path.is_dir():
            raise _is_a_directory(self.state_path)

    def _tighten(self) -> None:
        """Make the state's directory (when it is `.mlform`) 0700 and its files 0600."""
        if self.state_path.parent.name == PRIVATE_DIR_NAME:
            tighten(self.state_path.parent, DIR_MODE)
        for path in (self.state_path, self.backup_path, self.journal_path,
                     self._lock.lock_path, self._lock.record_path):
            if not path.is_dir():
                tighten(path, FILE_MODE)


def journal_line(entry: JournalEntry) -> bytes:
    """One journal entry as a JSON line; a `Secret` left in it is refused, never written."""
    doc = {f.name: getattr(entry, f.name) for f in fields(entry)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=json_default).encode("utf-8") + b"\n"


def parse_journal_line(line: bytes, where: str) -> JournalEntry:
    """Parse one complete journal line; `where` (file:line) names it in errors."""
    try:
        doc = json.loads(line)
    except UnicodeDecodeError:
        raise _damaged_journal(where, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _damaged_journal(where, f"not valid JSON: {exc.msg.lower()} at column {exc.colno}"
                               ) from None
    problem = _journal_entry_problem(doc)
    if problem:
        raise _damaged_journal(where, problem)
    return JournalEntry(kind=doc["kind"], name=doc["name"], lineage=doc["lineage"],
                        base_serial=doc["base_serial"], resource=doc.get("resource"),
                        detail=doc["detail"], time=doc["time"])


def replay_journal(state: State | None, entries: list[JournalEntry]) -> State | None:
    """The state the journal describes: `state` with the entries based on it applied in order.

    With no stored state (an interrupted first apply) every entry counts, and the
    state takes the first entry's lineage and serial. The serial is left as is:
    whoever stores the result writes the next one.
    """
    if state is None:
        if not entries:
            return None
        state = replace(State.new(stack=""), lineage=entries[0].lineage,
                        serial=entries[0].base_serial)
    else:
        entries = [e for e in entries
                   if e.lineage == state.lineage and e.base_serial == state.serial]
    only_intended: set[str] = set()
    for entry in entries:
        state = _apply_entry(state, entry, only_intended)
    return state


def _apply_entry(state: State, entry: JournalEntry, only_intended: set[str]) -> State:
    """One step of the replay; `only_intended` holds names that exist only as an intent."""
    current = state.resources.get(entry.name)
    reported = resource_from_json(entry.name, entry.resource) if entry.resource else None
    if entry.kind == "intent":
        # The remote call may have happened: keep what was known and mark it pending with
        # the key under which the next apply can look for it.
        if current is not None:
            key = reported.idempotency_key if reported else current.idempotency_key
            return state.with_resource(current.with_(status="pending", idempotency_key=key))
        if reported is None:
            return state
        only_intended.add(entry.name)
        return state.with_resource(reported.with_(status="pending"))
    was_only_intended = entry.name in only_intended
    only_intended.discard(entry.name)
    if entry.kind == "done":
        assert reported is not None, "a 'done' entry without its resource is refused on reading"
        return state.with_resource(reported)
    if entry.kind == "deleted":
        return state.without(entry.name)
    # failed: keep what the provider says is left, else what existed before, else nothing
    # (a create that failed without an id left nothing behind).
    if reported is not None and reported.id is not None:
        return state.with_resource(reported.with_(status="tainted"))
    if current is not None and not was_only_intended:
        return state.with_resource(current.with_(status="tainted"))
    return state.without(entry.name)


def _journal_entry_problem(doc: Any) -> str:
    if not isinstance(doc, dict):
        return "not a JSON object"
    if doc.get("kind") not in JOURNAL_KINDS:
        return f"kind {doc.get('kind')!r} is not one of {', '.join(JOURNAL_KINDS)}"
    for name, kind in (("name", str), ("lineage", str), ("base_serial", int),
                       ("detail", str), ("time", int | float)):
        if not isinstance(doc.get(name), kind) or isinstance(doc.get(name), bool):
            return f"'{name}' is missing or of the wrong type"
    resource = doc.get("resource")
    if resource is None:
        return "'done' needs the resource" if doc["kind"] == "done" else ""
    problems = resource_problems(resource, "resource")
    return "; ".join(problems)


def _damaged_journal(where: str, problem: str) -> MlformError:
    return MlformError.simple(
        f"apply journal line {where} is damaged: {problem}",
        help="the journal records an interrupted apply; if that apply's changes are known, "
             "move the journal aside and run 'mlform refresh'")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` (mode 0600): a crash leaves the old or the new content."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or creation in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _drop_torn_tail(fd: int) -> None:
    """Cut off a line whose append was interrupted, so the next line starts clean."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    while end > 0:
        start = max(0, end - 4096)
        cut = os.pread(fd, end - start, start).rfind(b"\n")
        if cut >= 0:
            os.ftruncate(fd, start + cut + 1)
            return
        end = start
    os.ftruncate(fd, 0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise _is_a_directory(path) from None
    except OSError as exc:
        raise MlformError.simple(f"cannot read '{path}': {exc.strerror or exc}",
                                 help=f"check that '{path}' is a file this user can read "
                                      "and write") from None


def _is_a_directory(path: Path) -> MlformError:
    return MlformError.simple(
        f"'{path}' is a directory, but the state must be a file there",
        help=f"move the directory aside (mv '{path}' '{path}.dir'); if it holds your state "
             f"file, put that file at '{path}' instead; or set 'backend: {{path: ...}}' in "
             "mlform.yaml to another file")


def _is_readable_state(data: bytes) -> bool:
    try:
        decode(data, "")
    except MlformError:
        return False
    return True
