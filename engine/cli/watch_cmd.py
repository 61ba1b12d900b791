"""`mlform watch`: the controller loop for monitors and retraining policies.

Each pass ticks every monitor (and scheduled job), records what they measured,
then ticks every retraining policy; a policy that asks for a retrain gets a
targeted plan (its training job replaced, everything downstream re-planned) that
is applied at once: gates still guard registration and the endpoint's rollout
strategy still governs traffic. Every action goes to the audit log; see
`watch_pass` for what one pass does and when it holds the state lock.

A long-running watch is a controller: when another command holds the state lock it
waits and tries again (each try bounded by --lock-timeout, with a growing pause in
between) instead of exiting, and an error in one pass is reported and the next
pass runs. `--once` is a command like `plan`: a lock it cannot get within
--lock-timeout, or an error, ends it with exit code 1; with `--detailed-exitcode`
it exits 2 when a monitor's latest evaluation is a breach, for cron and CI to alert.
"""

from __future__ import annotations

import contextlib
import time

import click

from .common import EXIT_CHANGES, EXIT_ERROR, Exit, common_options, err, stack_argument

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0


@contextlib.contextmanager
def holding_lock(session, say, keep_waiting: bool):
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
                time.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
        if waited:
            say("got the state lock; continuing")
        yield


@click.command("watch", help="Run monitors and retraining policies: once, or every --interval.")
@stack_argument
@common_options
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", default="30s", show_default=True, metavar="DURATION",
              help="Time between passes.")
@click.option("--detailed-exitcode", is_flag=True,
              help="With --once: exit 2 when a monitor's latest evaluation is a breach "
                   "(0 none, 1 error).")
def watch_cmd(opts, once, interval, detailed_exitcode):
    from ..diagnostics import MlformError
    from ..session import Session, parse_duration
    from .watch_pass import one_pass

    wait = parse_duration(interval)
    if detailed_exitcode and not once:
        raise MlformError.simple("--detailed-exitcode needs --once",
                                 help="run 'mlform watch --once --detailed-exitcode' from "
                                      "cron or CI: it exits 2 on a breach")

    def say(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {line}")

    session = Session(opts, "watch")
    outcome = None
    try:
        while True:
            try:
                outcome = one_pass(session, say,
                                   lambda: holding_lock(session, say, keep_waiting=not once))
            except MlformError as exc:
                if once:
                    raise
                err(exc.render())  # a controller keeps running: the next pass may succeed
            if once:
                break
            time.sleep(wait)
            # Applies run between passes: plan retrains from the spec as it is now.
            for cached in ("stack", "variables"):
                session.__dict__.pop(cached, None)
    except KeyboardInterrupt:
        say("stopped")
    finally:
        session.close()
    if detailed_exitcode and outcome is not None:
        if outcome.errors:
            raise Exit(EXIT_ERROR)
        if outcome.breached:
            say(f"breach: {', '.join(outcome.breached)}")
            raise Exit(EXIT_CHANGES)
