"""`mlform audit log` and `mlform audit verify`."""

from __future__ import annotations

import json

import click

from .common import EXIT_ERROR, Exit, stack_argument


@click.group("audit", help="Read and verify the audit log (.mlform/audit.jsonl).")
def audit_group():
    pass


@audit_group.command("log", help="Print the audit log, newest last.")
@stack_argument
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON lines.")
@click.option("-n", "--last", "last", type=int, default=0, help="Only the last N entries.")
def audit_log(stack_dir, as_json, last):
    from ..audit import AuditLog

    entries = AuditLog(stack_dir).entries()
    if last:
        entries = entries[-last:]
    if not entries:
        click.echo("The audit log is empty.")
        return
    for e in entries:
        if as_json:
            click.echo(json.dumps(e, sort_keys=True))
            continue
        changes = ", ".join(f"{c['action']} {c['resource']}" for c in e.get("changes", []))
        click.echo(f"#{e['seq']} {e['time']} {e['user']}@{e['host']} {e['command']}: "
                   f"{e['result']}" + (f" ({changes})" if changes else ""))


@audit_group.command("verify", help="Check the hash chain: detects an edited or removed entry.")
@stack_argument
def audit_verify(stack_dir):
    from ..audit import AuditLog

    log = AuditLog(stack_dir)
    problems = log.verify()
    if problems:
        for p in problems:
            click.echo(f"error: {p}", err=True)
        click.echo(f"The audit log {log.path} has been tampered with or damaged.", err=True)
        raise Exit(EXIT_ERROR)
    click.echo(f"The audit log is intact: {len(log.entries())} entries, hash chain verified.")
