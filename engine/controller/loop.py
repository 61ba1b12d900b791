"""The controller loop: a pass every interval until interrupted, or one pass.

A long-running watch is a controller: when another command holds the state lock it
waits and tries again (each try bounded by the lock timeout, with a growing pause in
between), and an error in one pass is reported and the next pass runs. A single
pass (`once`) is a command like `plan`: a lock it cannot get, or an error, raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..diagnostics import MlformError
from .lock import holding_lock
from .passes import PassResult, Retrain, one_pass
from .ticks import Say


def watch(session, say: Say, retrain: Retrain, once: bool, interval: float,
          on_error: Callable[[MlformError], None],
          sleep: Callable[[float], None] = time.sleep) -> PassResult | None:
    """Run passes; returns the last pass's result (None if none finished). A KeyboardInterrupt
    ends the loop, as the person watching asked."""
    outcome = None
    try:
        while True:
            try:
                outcome = one_pass(session, say,
                                   lambda: holding_lock(session, say, keep_waiting=not once),
                                   retrain)
            except MlformError as exc:
                if once:
                    raise
                on_error(exc)  # a controller keeps running: the next pass may succeed
            if once:
                break
            sleep(interval)
            # Applies run between passes: plan retrains from the spec as it is now.
            for cached in ("stack", "variables"):
                session.__dict__.pop(cached, None)
    except KeyboardInterrupt:
        say("stopped")
    return outcome
