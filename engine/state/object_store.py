"""The remote state backends' shared flow, over any object store with conditional writes.

S3, Cloud Storage and Azure Blob keep the same layout under the state's key:

    <key>                      the state, replaced whole by one upload
    <key>.backup               the state before the last write (only a readable one)
    <key>.lock                 the lock: LockInfo JSON, created only if absent
    <key>.journal/<seq>.json   one object per journal entry, created only if absent,
                               replayed on read exactly as the local backend does

`ObjectStoreBackend` implements lock, unlock, read, write and the journal once; each platform
module only maps its SDK's calls and errors onto `ConditionalObjectStore` (and says why its
platform's mechanism is safe).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, ClassVar, Protocol

from ..diagnostics import Diagnostic, MlformError
from .backend import Backend, JournalEntry, LockHeld, LockInfo
from .local_backend import journal_line, parse_journal_line, replay_journal
from .model import State
from .statefile import decode, encode

POLL_SECONDS = 1.0
SEQ_DIGITS = 10

Version = Any
"""An object's version as its store names it (a generation, an etag); compared by equality.
None stands for "there is no such object"."""


class Conflict(Exception):
    """A conditional put or delete was refused: the object is not in the state asked for.
    `error` is the store's own message, for when the caller did not expect a conflict."""

    def __init__(self, error: MlformError):
        super().__init__(str(error))
        self.error = error


class VersionMismatch(MlformError):
    """The state object is not the one this backend read: someone else wrote it."""


class ConditionalObjectStore(Protocol):
    """A bucket or container: each call maps its SDK's failures to an MlformError that says
    `what` was being done, except a refused condition, which is `Conflict`."""

    compare_and_swap: bool
    """Whether writes of the state are conditional on the version read (`if_version`)."""

    def uri(self, key: str) -> str: ...

    def get(self, key: str) -> tuple[bytes, Version] | None:
        """The object's content and version; None when there is none."""

    def put(self, key: str, data: bytes, what: str, *, if_version: Version = None,
            if_absent: bool = False) -> Version:
        """Store `data` (only if the object has `if_version`, or is absent); its new version."""

    def copy(self, source: str, target: str, data: bytes, what: str) -> None:
        """Make `target` a copy of `source`, whose content (already read) is `data`."""

    def delete(self, key: str, what: str, *, if_version: Version = None) -> None:
        """Remove the object (only if it has `if_version`); one that is gone already is fine."""

    def delete_all(self, keys: list[str], what: str) -> None: ...

    def list(self, prefix: str, what: str) -> list[str]:
        """The keys that start with `prefix`."""


class ObjectStoreBackend(Backend):
    kind: ClassVar[str]
    """The backend's name in messages ("s3", "gcs", "azureblob")."""
    version_word: ClassVar[str] = "version"
    """What the store calls a version, in a refused write's detail ("generation", "etag")."""
    mismatch: ClassVar[type[VersionMismatch]] = VersionMismatch

    def __init__(self, store: ConditionalObjectStore, key: str):
        self.store = store
        self.key = key
        self.lock_key = f"{key}.lock"
        self.backup_key = f"{key}.backup"
        self.journal_prefix = f"{key}.journal/"
        self._version: Version = _UNREAD
        """The state's version when last read or written (None: there was none)."""
        self._held: str | None = None
        self._seq: int | None = None
        self._seq_mutex = threading.Lock()

    def describe(self) -> str:
        return f"{self.kind} state '{self.store.uri(self.key)}'"

    # --- state ----------------------------------------------------------------------

    def read(self) -> State | None:
        entries = self.journal_read()
        data, self._version = self._get(self.key)
        if data is None:
            return replay_journal(None, entries)
        where = self.store.uri(self.key)
        try:
            state = decode(data, where)
        except MlformError:
            # Damaged: say so again, suggesting the backup only if there is a readable one.
            backup, _ = self._get(self.backup_key)
            good = self.store.uri(self.backup_key) \
                if backup is not None and _readable(backup) else None
            state = decode(data, where, good)
        return replay_journal(state, entries)

    def write(self, state: State) -> None:
        """Store `state`; on a compare-and-swap store only if the state object is still the
        one last read, else raise `mismatch` (and keep the journal, which still describes
        this apply)."""
        data = encode(state)
        previous, version = self._get(self.key)
        cas = self.store.compare_and_swap
        # A backend that never read compares against what is there now.
        expected = version if self._version is _UNREAD else self._version
        if cas and version != expected:
            raise self._mismatch(expected, version)
        if previous is not None and _readable(previous):
            # A damaged state must not push the last good copy out of the backup.
            self.store.copy(self.key, self.backup_key, previous, "copy the state to its backup")
        try:
            if cas:
                written = self.store.put(self.key, data, "write the state",
                                         if_version=expected, if_absent=expected is None)
            else:
                written = self.store.put(self.key, data, "write the state")
        except Conflict:
            # Our own upload may have landed before a retry of it was refused: that is success.
            now, written = self._get(self.key)
            if now != data:
                raise self._mismatch(expected, written) from None
        self._version = written
        self._clear_journal()

    def _mismatch(self, expected: Version, found: Version) -> VersionMismatch:
        def name(version: Version) -> str:
            return f"{self.version_word} {version}" if version is not None else "no state"

        return self.mismatch(Diagnostic(
            f"the state in {self.describe()} was written by someone else since this command "
            f"read it; this command's state was not written",
            detail=f"read {name(expected)}, found {name(found)} (was its lock removed with "
                   "'mlform state unlock' while this command ran?)",
            help="run 'mlform plan' to see the state as it is now, and apply again"))

    # --- lock -----------------------------------------------------------------------

    def lock(self, info: LockInfo, timeout: float = 0.0) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        body = json.dumps(info.to_json()).encode()
        while True:
            try:
                self.store.put(self.lock_key, body, "take the lock", if_absent=True)
                self._held = info.id
                return
            except Conflict:
                pass
            holder = self.holder()
            if holder is not None and holder.id == info.id:
                self._held = info.id  # our create landed, and a retry of it was refused
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeld(holder, self.describe())
            time.sleep(min(POLL_SECONDS, left))

    def unlock(self, lock_id: str, force: bool = False) -> None:
        """Release our lock; with `force`, remove whichever lock carries `lock_id`."""
        if not force and self._held != lock_id:
            raise ValueError(f"lock {lock_id} is not held by this process")
        recorded, version = self._holder()
        if recorded is None and force:
            raise MlformError.simple(f"no lock is recorded on {self.describe()}",
                                     help="there is nothing to unlock")
        if recorded is not None and recorded.id != lock_id:
            raise MlformError.simple(
                f"lock ID '{lock_id}' does not match the lock on {self.describe()}",
                detail=f"the lock is {recorded.describe()}",
                help=f"to remove that lock, run: mlform state unlock {recorded.id}")
        if recorded is not None:
            try:
                # Only the lock object read: one taken since by someone else stays.
                self.store.delete(self.lock_key, "release the lock",
                                  if_version=version if self.store.compare_and_swap else None)
            except Conflict:
                raise MlformError.simple(
                    f"the lock on {self.describe()} changed while it was being removed",
                    help="someone else holds it now: run 'mlform plan' to see who") from None
        if self._held == lock_id:
            self._held = None

    def holder(self) -> LockInfo | None:
        return self._holder()[0]

    def _holder(self) -> tuple[LockInfo | None, Version]:
        data, version = self._get(self.lock_key)
        if data is None:
            return None, None
        try:
            doc = json.loads(data)
            return LockInfo(id=str(doc["id"]), pid=int(doc["pid"]), host=str(doc["host"]),
                            user=str(doc["user"]), command=str(doc["command"]),
                            since=float(doc["since"])), version
        except (ValueError, KeyError, TypeError):
            return None, version

    # --- journal --------------------------------------------------------------------

    def journal_append(self, entry: JournalEntry) -> None:
        """One new object per entry, created only if absent (a clash of two writers is an
        error, not an overwrite); each store acknowledges an upload once it is durable."""
        with self._seq_mutex:
            if self._seq is None:
                keys = self._journal_keys("append to the journal")
                self._seq = keys[-1][1] if keys else 0
            self._seq += 1
            key = f"{self.journal_prefix}{self._seq:0{SEQ_DIGITS}d}.json"
        try:
            self.store.put(key, journal_line(entry), "append to the journal", if_absent=True)
        except Conflict as clash:
            raise clash.error from None

    def journal_read(self) -> list[JournalEntry]:
        entries = []
        for key, _ in self._journal_keys():
            data, _ = self._get(key)
            if data is not None:
                entries.append(parse_journal_line(data.rstrip(b"\n"), self.store.uri(key)))
        return entries

    def _journal_keys(self, what: str = "read the state") -> list[tuple[str, int]]:
        found = []
        for key in self.store.list(self.journal_prefix, what):
            stem = key[len(self.journal_prefix):].removesuffix(".json")
            if stem.isdigit():
                found.append((key, int(stem)))
        return sorted(found, key=lambda item: item[1])

    def _clear_journal(self) -> None:
        self.store.delete_all([key for key, _ in self._journal_keys("clear the journal")],
                              "clear the journal")
        with self._seq_mutex:
            self._seq = None

    # --- plumbing -------------------------------------------------------------------

    def _get(self, key: str) -> tuple[bytes | None, Version]:
        """The object's content and version; (None, None) when there is none."""
        found = self.store.get(key)
        return found if found is not None else (None, None)


class _Unread:
    """The version of a state not read yet."""

    def __repr__(self) -> str:
        return "<unread>"


_UNREAD = _Unread()


def _readable(data: bytes) -> bool:
    try:
        decode(data, "state")
    except MlformError:
        return False
    return True
