"""`mlform refresh` and `mlform drift`."""

from __future__ import annotations

import json
import time

import click

from .common import EXIT_CHANGES, Exit, common_options, stack_argument


@click.command("refresh", help="Read live state through the providers and record it.")
@stack_argument
@common_options
def refresh_cmd(opts):
    from ..audit import AuditLog
    from ..refresh import KIND_TEXT, refresh
    from ..session import Session

    session = Session(opts, "refresh")
    try:
        with session.locked():
            state = session.read_state()
            rr = refresh(state, session.providers, opts.parallelism)
            for e in rr.errors:
                click.echo(f"warning: {e}", err=True)
            new = rr.state.next_serial()
            session.backend.write(new)
            AuditLog(session.dir).append(
                command="refresh", result="ok", plan_digest=None,
                changes=[{"resource": f.name, "action": f"refresh: {f.kind}"}
                         for f in rr.findings],
                detail={"serial": new.serial})
    finally:
        session.close()
    for f in rr.findings:
        click.echo(f"{f.type}.{f.name}: {KIND_TEXT.get(f.kind, f.kind)}"
                   + (f" ({f.detail})" if f.detail else ""))
    click.echo(f"Refreshed {len(state.resources)} resource(s); state serial {new.serial}.")


@click.command("drift", help="Report where live infrastructure differs from state and spec "
                             "(exit 2 on drift).")
@stack_argument
@common_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "html"]),
              default="text", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write the report to FILE.")
def drift_cmd(opts, fmt, out):
    from ..drift import DriftReport, orphan_findings, spec_findings
    from ..plan.planner import PlanOptions, make_plan
    from ..refresh import refresh
    from ..session import Session
    from ..views import drift_view

    session = Session(opts, "drift")
    try:
        with session.locked():
            state = session.read_state()
            rr = refresh(state, session.providers, opts.parallelism)
            outside = {f.name for f in rr.findings}
            plan = make_plan(session.stack, rr.state, session.variables, session.providers,
                             PlanOptions(targets=tuple(opts.targets)))
            orphans, orphan_errors = orphan_findings(session.providers, state, session.stack)
    finally:
        session.close()
    report = DriftReport(stack=session.stack.name, checked_at=time.time(),
                         resources=len(state.resources),
                         findings=[f for f in rr.findings if f.is_drift]
                         + spec_findings(plan, outside) + orphans,
                         errors=rr.errors + orphan_errors)
    doc = report.to_json()
    from ..incidents import ACKNOWLEDGED, OPEN, IncidentStore

    store = IncidentStore(session.dir)
    doc["incidents"] = [{"id": i.id, "kind": i.kind, "status": i.status, "title": i.title,
                         "resources": list(i.resources), "opened": i.opened}
                        for i in store.list(OPEN) + store.list(ACKNOWLEDGED)]
    rendered = {"json": lambda d: json.dumps(d, indent=2, sort_keys=True) + "\n",
                "markdown": drift_view.markdown, "html": drift_view.html_page,
                "text": drift_view.text}[fmt](doc)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(rendered)
        click.echo(f"Wrote the drift report to {out}.")
    else:
        click.echo(rendered, nl=False)
    if report.drifted:
        raise Exit(EXIT_CHANGES)
