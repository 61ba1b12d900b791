"""Holding the state lock for one short step of a watch pass, waiting out another
command that holds it when the watch is a long-running controller."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0


@contextlib.contextmanager
def holding_lock(session, say: Callable[[str], None], keep_waiting: bool,
                 sleep: Callable[[float], None] = time.sleep) -> Iterator[None]:
    """Hold the state lock for one short step; with `keep_waiting`, try again after a
    pause (doubling up to BACKOFF_MAX_SECONDS) for as long as another command holds it."""
    from ..diagnostics import MlformError
    from ..state.backend import LockHeld

    delay, waited = BACKOFF_FIRST_SECONDS, False
    with contextlib.ExitStack() as held:
        while True:
            try:
                held.enter_context(session.locked())
                break
            except MlformError as exc:
                # Session.locked raises its diagnostic `from None`; the LockHeld it
                # replaces stays its context, which tells a held lock from other errors.
                if not keep_waiting or not isinstance(exc.__context__, LockHeld):
                    raise
                holder = exc.diagnostics[0].summary.removeprefix("the state is locked: ")
                say(f"waiting for the state lock ({holder}); next try in {delay:g}s")
                waited = True
                sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
        if waited:
            say("got the state lock; continuing")
        yield
