"""Where state is kept: the interface every backend (local file, S3) implements.

A backend stores one state document, takes and releases a lock that names its
holder, and keeps an append-only journal of the apply in progress so that each
finished step is durable at once without rewriting the whole state.
"""

from __future__ import annotations

import abc
import getpass
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field

from .model import State


@dataclass(frozen=True)
class LockInfo:
    """Who holds the lock; shown to anyone refused by it."""

    id: str
    pid: int
    host: str
    user: str
    command: str
    since: float

    @classmethod
    def mine(cls, command: str) -> LockInfo:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(id=str(uuid.uuid4()), pid=os.getpid(), host=socket.gethostname(),
                   user=user, command=command, since=time.time())

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return (f"ID {self.id}, held by {self.user}@{self.host} (pid {self.pid}) "
                f"running '{self.command}' since {when}")


class LockHeld(Exception):
    def __init__(self, holder: LockInfo | None, where: str):
        self.holder = holder
        self.where = where
        super().__init__(holder.describe() if holder else "lock held")


@dataclass
class JournalEntry:
    """One line of the apply journal: an intent before a remote call, a result after."""

    kind: str                  # "intent" | "done" | "deleted" | "failed"
    name: str
    lineage: str
    base_serial: int
    resource: dict | None = None   # storable ResourceState for "intent"/"done"
    detail: str = ""
    time: float = field(default_factory=time.time)


class Backend(abc.ABC):
    @abc.abstractmethod
    def describe(self) -> str: ...

    @abc.abstractmethod
    def read(self) -> State | None:
        """The stored state with any unfinished journal replayed into it; None if none."""

    @abc.abstractmethod
    def write(self, state: State) -> None:
        """Replace the stored state atomically and clear the journal."""

    @abc.abstractmethod
    def lock(self, info: LockInfo, timeout: float = 0.0) -> None:
        """Take the lock or raise LockHeld (after waiting up to `timeout` seconds)."""

    @abc.abstractmethod
    def unlock(self, lock_id: str, force: bool = False) -> None: ...

    @abc.abstractmethod
    def holder(self) -> LockInfo | None: ...

    @abc.abstractmethod
    def journal_append(self, entry: JournalEntry) -> None:
        """Durably record one step of an apply (fsync or equivalent before returning)."""

    @abc.abstractmethod
    def journal_read(self) -> list[JournalEntry]: ...
