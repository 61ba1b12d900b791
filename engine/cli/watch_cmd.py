"""`mlform watch`: the flags and the printing of the controller loop.

The loop itself (ticks, policy decisions, incidents, retrains, waiting out a held
lock) lives in `mlform.engine.controller`; this module gives it a way to print a
line and a way to retrain (a targeted plan applied with the same display, interrupt
handling and audit entry as `mlform apply`). `--once` is a command like `plan`: a
lock it cannot get within --lock-timeout, or an error, ends it with exit code 1;
with `--detailed-exitcode` it exits 2 when a monitor's latest evaluation is a
breach, for cron and CI to alert.
"""

from __future__ import annotations

import time

import click

from .common import EXIT_CHANGES, EXIT_ERROR, Exit, common_options, err, stack_argument


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
    from ..controller import watch
    from ..diagnostics import MlformError
    from ..session import Session, parse_duration

    wait = parse_duration(interval)
    if detailed_exitcode and not once:
        raise MlformError.simple("--detailed-exitcode needs --once",
                                 help="run 'mlform watch --once --detailed-exitcode' from "
                                      "cron or CI: it exits 2 on a breach")

    def say(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {line}")

    session = Session(opts, "watch")
    try:
        outcome = watch(session, say, lambda request: _retrain(session, request), once, wait,
                        on_error=lambda exc: err(exc.render()))
    finally:
        session.close()
    if detailed_exitcode and outcome is not None:
        if outcome.errors:
            raise Exit(EXIT_ERROR)
        if outcome.breached:
            say(f"breach: {', '.join(outcome.breached)}")
            raise Exit(EXIT_CHANGES)


def _retrain(session, request):
    """Plan the retrain the controller asks for and apply it, as `mlform apply` would."""
    from ..plan.planfile import digest
    from .plan_apply import _plan, run_apply

    session.options.targets = list(request.targets)
    try:
        plan, doc, state = _plan(session, destroy=False, refresh=True,
                                 replace=request.replace, notes=request.notes)
        return run_apply(session, plan, state, request.command, digest(doc), quiet=True)
    finally:
        session.options.targets = []
