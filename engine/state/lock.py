"""The state lock: an OS lock that dies with its holder, and a record naming the holder.

`flock` on `<state>.lock` is what excludes: the kernel drops it when the
process ends, however it ends, so a killed command never leaves the state
locked. The record `<state>.lock.json` says who holds it (pid, host, user,
command, since) so that a refused command can name the holder, and it covers
what the OS lock cannot see: a holder on another host sharing the directory,
or a filesystem that does not enforce flock. A record naming a dead pid on this
host is stale and is overwritten.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ..diagnostics import MlformError
from .backend import LockHeld, LockInfo

POLL_SECONDS = 0.05


class StateLock:
    def __init__(self, lock_path: Path, record_path: Path, where: str):
        self.lock_path = lock_path
        self.record_path = record_path
        self.where = where
        self._fd: int | None = None
        self._held: LockInfo | None = None

    def acquire(self, info: LockInfo, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to `timeout` seconds, or raise `LockHeld`."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._try_acquire(info):
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeld(self.holder(), self.where)
            time.sleep(min(POLL_SECONDS, left))

    def release(self, lock_id: str) -> None:
        """Release the lock this process took under `lock_id`."""
        if self._held is None or self._held.id != lock_id:
            raise ValueError(f"lock {lock_id} is not held by this process")
        recorded = self.holder()
        if recorded is not None and recorded.id == lock_id:
            self.record_path.unlink(missing_ok=True)
        self._close()

    def force_release(self, lock_id: str) -> None:
        """Remove the record of lock `lock_id` left by a holder that cannot release it."""
        recorded = self.holder()
        if recorded is None:
            raise MlformError.simple(f"no lock is recorded on {self.where}",
                                     help="there is nothing to unlock")
        if recorded.id != lock_id:
            raise MlformError.simple(
                f"lock ID '{lock_id}' does not match the lock on {self.where}",
                detail=f"the lock is {recorded.describe()}",
                help=f"to remove that lock, run: mlform state unlock {recorded.id}")
        if self._held is not None and self._held.id == lock_id:
            self.release(lock_id)
            return
        fd = _try_flock(self.lock_path)
        if fd is None:
            raise MlformError.simple(
                f"lock ID '{lock_id}' is held by a running process",
                detail=f"the lock is {recorded.describe()}",
                help=f"wait for it to finish, or stop it (kill {recorded.pid} on "
                     f"{recorded.host}): the lock goes with the process")
        try:
            self.record_path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def holder(self) -> LockInfo | None:
        """The recorded holder; None when there is no readable record."""
        try:
            data = json.loads(self.record_path.read_bytes())
            return LockInfo(id=str(data["id"]), pid=int(data["pid"]), host=str(data["host"]),
                            user=str(data["user"]), command=str(data["command"]),
                            since=float(data["since"]))
        except (OSError, ValueError, KeyError, TypeError):
            # A record cut short by a crash names nobody; the OS lock still decides.
            return None

    def _try_acquire(self, info: LockInfo) -> bool:
        if self._held is not None:
            return False
        fd = _try_flock(self.lock_path)
        if fd is None:
            return False
        recorded = self.holder()
        if recorded is not None and not _is_stale(recorded):
            os.close(fd)
            return False
        try:
            _write_record(self.record_path, info)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._held = fd, info
        return True

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
        self._fd, self._held = None, None


def _try_flock(path: Path) -> int | None:
    """A descriptor holding an exclusive flock on `path`, or None if another holds it."""
    # O_CLOEXEC: servers started during an apply must not inherit, and so keep, the lock.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_record(path: Path, info: LockInfo) -> None:
    # Written in place under the flock: a record cut short reads as no record.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps(info.to_json(), sort_keys=True).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def _is_stale(recorded: LockInfo) -> bool:
    """True when the recorded holder is a process on this host that no longer runs."""
    return recorded.host == socket.gethostname() and not _pid_alive(recorded.pid)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False  # os.kill(0 or negative) would signal a process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True

