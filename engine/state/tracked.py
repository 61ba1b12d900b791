"""The backend a command uses: the spec's backend, checked against the stack's record.

Every read first makes sure the spec still names the backend the stack last used
(or that the one it used before holds nothing), then that the state read
continues the one last seen (`continuity`), and remembers what it read; every
write is remembered too. Locking and the journal pass straight through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..diagnostics import Location, MlformError
from .backend import Backend, JournalEntry, LockInfo
from .continuity import backend_changed, check_continuity, unreadable_previous
from .model import State
from .record import (
    DEFAULT_LOCAL_PATH,
    BackendRecord,
    RecordStore,
    describe_settings,
    same_backend,
)

Opener = Callable[[dict[str, Any]], Backend]
DEFAULT_SETTINGS = {"type": "local", "path": DEFAULT_LOCAL_PATH}


class TrackedBackend(Backend):
    def __init__(self, inner: Backend, settings: dict[str, Any], stack_dir: Path,
                 opener: Opener, location: Location | None = None):
        """`settings` are the spec's (`record.backend_settings`); `opener` opens a backend
        from recorded settings; `location` is where the spec's `backend:` is written."""
        self.inner = inner
        self.settings = settings
        self.stack_dir = Path(stack_dir)
        self.store = RecordStore(stack_dir)
        self.opener = opener
        self.location = location

    def describe(self) -> str:
        return self.inner.describe()

    def read(self) -> State | None:
        record = self.recorded()
        if record is not None and not same_backend(record.backend, self.settings):
            self._check_previous_is_empty(record)
            record = None  # nothing was left behind: the new backend starts the record
        state = self.inner.read()
        if record is not None:
            check_continuity(record, state, self.describe())
        self._remember(record, state)
        return state

    def write(self, state: State) -> None:
        self.inner.write(state)
        record = self.store.load()
        if record is None or not same_backend(record.backend, self.settings):
            record = BackendRecord(self.settings)
        self.store.save(record.seen(state.lineage, state.serial))

    def accept(self) -> State | None:
        """Take what the backend holds now as the stack's state, whatever was seen before."""
        state = self.inner.read()
        self.store.save(BackendRecord(self.settings, state.lineage if state else None,
                                      state.serial if state else None))
        return state

    def recorded(self) -> BackendRecord | None:
        """The stack's record; for a stack used before records existed, the default local
        state if it is there (so a `backend:` added to such a stack is noticed)."""
        record = self.store.load()
        if record is None and (self.stack_dir / DEFAULT_LOCAL_PATH).is_file():
            record = BackendRecord(dict(DEFAULT_SETTINGS))
        return record

    def _check_previous_is_empty(self, record: BackendRecord) -> None:
        previous = describe_settings(record.backend)
        try:
            opened = self.opener(record.backend)
            previous = opened.describe()
            old = opened.read()
        except MlformError as exc:
            raise unreadable_previous(previous, exc, self.location) from None
        if old is not None and old.resources:
            raise backend_changed(previous, old, self.describe(), self.location)

    def _remember(self, record: BackendRecord | None, state: State | None) -> None:
        # The spec's settings replace recorded ones that name the same state (a new region).
        updated = BackendRecord(self.settings, record.lineage if record else None,
                                record.serial if record else None)
        if state is not None:
            updated = updated.seen(state.lineage, state.serial)
        if updated != record:
            # Only a memory: a stack directory this user cannot write still reads its state.
            with contextlib.suppress(OSError):
                self.store.save(updated)

    # --- passed through -------------------------------------------------------------

    def lock(self, info: LockInfo, timeout: float = 0.0) -> None:
        self.inner.lock(info, timeout)

    def unlock(self, lock_id: str, force: bool = False) -> None:
        self.inner.unlock(lock_id, force)

    def holder(self) -> LockInfo | None:
        return self.inner.holder()

    def journal_append(self, entry: JournalEntry) -> None:
        self.inner.journal_append(entry)

    def journal_read(self) -> list[JournalEntry]:
        return self.inner.journal_read()
