"""`mlform incidents list | show | ack | resolve`: read incidents and move them through
open -> acknowledged -> resolved; each acknowledgement and resolution is audited."""

from __future__ import annotations

import json

import click

from .common import stack_argument

USER_OPTION = click.option("--user", default=None, metavar="NAME",
                           help="Who is acting (default: the logged-in user).")
NOTE_OPTION = click.option("--note", default="", metavar="TEXT",
                           help="A line for the incident's timeline.")


@click.group("incidents", help="List, show, acknowledge and resolve incidents.")
def incidents_group():
    pass


@incidents_group.command("list", help="List incidents, oldest first (unresolved by default).")
@stack_argument
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved", "all"]),
              default=None, help="Only incidents with this status (default: unresolved).")
@click.option("--json", "as_json", is_flag=True, help="Print the incidents as JSON lines.")
def incidents_list(stack_dir, status, as_json):
    from ..incidents import RESOLVED, IncidentStore

    found = IncidentStore(stack_dir).list(None if status in (None, "all") else status)
    if status is None:
        found = [i for i in found if i.status != RESOLVED]
    if as_json:
        for incident in found:
            click.echo(json.dumps(incident.to_dict(), sort_keys=True))
        return
    if not found:
        click.echo("No incidents." if status else "No unresolved incidents.")
        return
    for i in found:
        times = f" x{i.occurrences}" if i.occurrences > 1 else ""
        click.echo(f"{i.id}  {i.status:<12} {i.kind:<18} {', '.join(i.resources)}: "
                   f"{i.title}{times} (opened {i.opened})")


@incidents_group.command("show", help="Show one incident and its timeline.")
@click.argument("incident_id", metavar="ID")
@stack_argument
def incidents_show(incident_id, stack_dir):
    incident = _store_call(stack_dir, "get", incident_id)
    click.echo(f"{incident.id}: {incident.title}")
    click.echo(f"  kind:      {incident.kind}")
    click.echo(f"  status:    {incident.status}")
    click.echo(f"  resources: {', '.join(incident.resources)}")
    click.echo(f"  opened:    {incident.opened} ({incident.occurrences} occurrence(s))")
    if incident.acknowledged_by:
        click.echo(f"  acknowledged by {incident.acknowledged_by} at "
                   f"{incident.acknowledged_at}")
    if incident.resolved_by:
        click.echo(f"  resolved by {incident.resolved_by} at {incident.resolved_at}"
                   + (f": {incident.resolution}" if incident.resolution else ""))
    if incident.measured:
        click.echo("  measured:")
        for name, value in incident.measured.items():
            click.echo(f"    {name}: {value}")
    if incident.detail:
        click.echo(f"  detail:    {incident.detail}")
    click.echo("  timeline:")
    for entry in incident.timeline:
        click.echo(f"    {entry.time}  {entry.actor}: {entry.text}")


@incidents_group.command("ack", help="Acknowledge an open incident: someone is on it.")
@click.argument("incident_id", metavar="ID")
@stack_argument
@USER_OPTION
@NOTE_OPTION
def incidents_ack(incident_id, stack_dir, user, note):
    incident = _store_call(stack_dir, "ack", incident_id, user, note)
    _audit(stack_dir, incident, "acknowledge", note)
    click.echo(f"{incident.id} acknowledged by {incident.acknowledged_by}.")


@incidents_group.command("resolve", help="Resolve an incident.")
@click.argument("incident_id", metavar="ID")
@stack_argument
@USER_OPTION
@NOTE_OPTION
def incidents_resolve(incident_id, stack_dir, user, note):
    incident = _store_call(stack_dir, "resolve", incident_id, user, note)
    _audit(stack_dir, incident, "resolve", note)
    click.echo(f"{incident.id} resolved by {incident.resolved_by}.")


def _store_call(stack_dir, method: str, *args):
    from ..diagnostics import MlformError
    from ..incidents import IncidentError, IncidentStore

    try:
        return getattr(IncidentStore(stack_dir), method)(*args)
    except IncidentError as e:
        raise MlformError.simple(str(e), help="run 'mlform incidents list --status all' to "
                                 "see every incident and its status") from None


def _audit(stack_dir, incident, action: str, note: str) -> None:
    from ..audit import AuditLog

    user = incident.resolved_by if action == "resolve" else incident.acknowledged_by
    AuditLog(stack_dir).append(
        command=f"incidents {'ack' if action == 'acknowledge' else action} {incident.id}",
        result="ok", plan_digest=None, user=user,
        changes=[{"resource": r, "action": f"{action} incident {incident.id}"}
                 for r in incident.resources],
        detail={"incident": incident.id, "kind": incident.kind, "title": incident.title,
                "note": note})
