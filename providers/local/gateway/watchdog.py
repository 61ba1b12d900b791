"""The proxy's own check that it is still its gateway's: an orphan ends itself.

Every `INTERVAL` seconds the proxy looks at its directory, and ends (as on SIGTERM:
in-flight requests finish, the request log is flushed) when

- the directory is gone, or is another one than it started in (a delete removed it,
  and maybe a gateway of the same name was created since): no apply or destroy will
  look for this proxy again;
- the record (`server.json`) names another running proxy of the gateway, on two checks
  in a row: a later proxy replaced it, and nothing stops this one by its record.

A missing record is no reason: a proxy runs a moment before its record is written
(`serving.process.spawn` binds the socket and starts it first), and the next apply
stops one that an apply killed in that moment left running.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..serving import process
from . import proxies

log = logging.getLogger("mlform.gateway")

INTERVAL = 1.0
GRACE = 30.0
"""Seconds a graceful stop may take before the process exits at once."""


def _identity(directory: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Watchdog:
    def __init__(self, directory: Path, pid: int | None = None):
        self.directory = Path(directory)
        self.pid = os.getpid() if pid is None else pid
        self.identity = _identity(self.directory)
        self._replaced = 0

    def orphaned(self) -> str | None:
        """Why this proxy is no longer its gateway's; None while it is."""
        if self.identity is None or _identity(self.directory) != self.identity:
            return f"its directory {self.directory} was removed"
        record = process.read_record(self.directory)
        if record is not None and record.pid != self.pid \
                and proxies.recorded(self.directory, record) is not None:
            self._replaced += 1
            if self._replaced >= 2:
                return f"the gateway's record names another proxy (pid {record.pid})"
        else:
            self._replaced = 0
        return None


def start(directory: Path, stop: Callable[[], None], interval: float = INTERVAL,
          grace: float = GRACE) -> threading.Thread:
    """Check on a daemon thread; call `stop` once orphaned, and exit the process if it
    still runs `grace` seconds later."""
    dog = Watchdog(directory)

    def run() -> None:
        while True:
            time.sleep(interval)
            why = dog.orphaned()
            if why is not None:
                break
        log.warning("the proxy (pid %d) stops: %s", dog.pid, why)
        stop()
        time.sleep(grace)
        os._exit(0)

    thread = threading.Thread(target=run, name="gateway-watchdog", daemon=True)
    thread.start()
    return thread
