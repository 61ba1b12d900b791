"""`mlform plan`, `apply` and `destroy`."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
from pathlib import Path

import click

from ..diagnostics import MlformError
from .common import EXIT_CHANGES, EXIT_ERROR, Exit, common_options, echo, err, stack_argument


def _plan(session, destroy: bool, refresh: bool, replace: tuple[str, ...] = (),
          notes: dict | None = None, policy_paths: tuple = (), labels: tuple = ()):
    """Refresh (unless told not to) and plan; returns (plan, document, refreshed state)."""
    from ..plan.planfile import to_document, variables_digest
    from ..plan.planner import PlanOptions, make_plan
    from ..refresh import refresh as do_refresh

    stack, variables = session.stack, session.variables
    state = session.read_state()
    _warn_open_incidents(session)
    findings, errors = [], []
    if refresh and state.resources:
        rr = do_refresh(state, session.providers, session.options.parallelism)
        state, findings, errors = rr.state, rr.findings, rr.errors
    for e in errors:
        err(f"warning: {e}")
    plan = make_plan(stack, state, variables, session.providers,
                     PlanOptions(targets=tuple(session.options.targets), destroy=destroy,
                                 replace=replace, drift=tuple(findings), notes=notes or {}))
    doc = to_document(plan, state.salt, variables_digest(variables, state.salt))
    from ..state.statefile import resource_to_json

    doc["prior_state"] = {n: resource_to_json(r, state.salt) for n, r in state.resources.items()}
    from .review import add_review

    add_review(session, plan, doc, policy_paths, labels)
    return plan, doc, state


def _warn_open_incidents(session) -> None:
    from ..incidents import ACKNOWLEDGED, OPEN, IncidentStore

    store = IncidentStore(session.dir)
    unresolved = store.list(OPEN) + store.list(ACKNOWLEDGED)
    for inc in unresolved:
        err(f"note: incident {inc.id} is {inc.status}: {inc.title}")
    if unresolved:
        err("      (see 'mlform incidents list'; resolve them with 'mlform incidents resolve ID')")


def drift_lines(findings) -> list[str]:
    from ..refresh import KIND_TEXT

    lines = []
    for f in findings:
        lines.append(f"{f.type}.{f.name}: {KIND_TEXT.get(f.kind, f.kind)}"
                     + (f" ({f.detail})" if f.detail else ""))
        for a in f.attributes:
            from ..views.plan_text import fmt_value

            lines.append(f"    {a.path}: {fmt_value(a.before, 36)} -> {fmt_value(a.after, 36)}")
    return lines


def render_plan(doc: dict, plan, fmt: str, color: bool) -> None:
    if fmt == "json":
        import json

        out = {k: v for k, v in doc.items() if k != "prior_state"}
        click.echo(json.dumps(out, indent=2, sort_keys=True, default=str))
    elif fmt == "markdown":
        from ..views.plan_markdown import render as render_markdown

        click.echo(render_markdown(doc), nl=False)
    else:
        from ..views.plan_text import render as render_text

        echo(render_text(doc, color=color, drift_lines=drift_lines(plan.drift)), color=color)


@click.command("plan", help="Show what apply would change, attribute by attribute, and why.")
@stack_argument
@common_options
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan to FILE for 'mlform apply FILE'.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when there are changes (0 none, 1 error).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True)
@click.option("--refresh", "refresh", type=click.BOOL, default=True, show_default=True,
              help="Read live state first (--refresh=false skips it).")
@click.option("--destroy", is_flag=True, help="Plan to destroy everything.")
@click.option("--replace", "replace", multiple=True, metavar="NAME",
              help="Plan to replace this resource even if unchanged.")
@click.option("--policy", "policy_paths", multiple=True, metavar="PATH",
              type=click.Path(path_type=Path),
              help="Check the plan against the policies in this file or folder too. Repeatable.")
@click.option("--label", "labels", multiple=True, metavar="LABEL",
              help="An approval label policies can read (also MLFORM_LABELS). Repeatable.")
@click.option("--preview", is_flag=True,
              help="Train what the plan would retrain on a scratch copy (local provider) and "
                   "show each model's metric and gate changes against the champion.")
@click.option("--preview-rows", type=click.IntRange(min=0), default=100_000, show_default=True,
              metavar="N", help="Train the preview on a sample of N rows of a larger dataset "
                                "(0: every row).")
def plan_cmd(opts, out, detailed_exitcode, fmt, refresh, destroy, replace, policy_paths,
             labels, preview, preview_rows):
    from ..plan.planfile import save
    from ..session import Session

    session = Session(opts, "plan")
    try:
        with session.locked():
            plan, doc, state = _plan(session, destroy, refresh, tuple(replace),
                                     policy_paths=tuple(policy_paths), labels=tuple(labels))
        if preview:
            from ..preview import make_preview

            # after the lock is released: the preview only reads the real stack
            doc["preview"] = make_preview(session, plan, state, preview_rows, say=err)
        render_plan(doc, plan, fmt, opts.color)
        if out:
            save(out, doc)
            if fmt == "text":
                click.echo(f"\nSaved the plan to {out}. Apply it exactly with: "
                           f"mlform apply {out}")
        from .review import report

        policies_failed = report(doc, session.stack)
    finally:
        session.close()
    if policies_failed:
        raise Exit(EXIT_ERROR)
    if detailed_exitcode and plan.has_changes():
        raise Exit(EXIT_CHANGES)


def _confirm(auto_approve: bool, what: str) -> None:
    if auto_approve:
        return
    from ..session import is_interactive

    if not is_interactive():
        raise MlformError.simple(
            f"refusing to {what} without confirmation: no terminal to ask on",
            help="review the plan and pass --auto-approve, or apply a saved plan file "
                 "('mlform plan --out plan.json' then 'mlform apply plan.json')")
    answer = click.prompt(f"\nDo you want to {what}? Only 'yes' will be accepted",
                          default="", show_default=False)
    if answer.strip() != "yes":
        err("Cancelled: nothing was changed.")
        raise Exit(EXIT_ERROR)


def run_apply(session, plan, state, command: str, plan_digest: str | None,
              quiet: bool = False):
    """Apply `plan` on top of `state`, with progress, Ctrl-C handling and an audit entry."""
    from ..apply.applier import Applier
    from ..audit import AuditLog
    from ..views.progress import LineHooks, LiveHooks
    from .common import console

    color = session.options.color and sys.stdout.isatty() and not quiet
    live = LiveHooks(console(True)) if color else None
    hooks = live or LineHooks()
    applier = Applier(session.stack, state, session.variables, session.providers,
                      session.backend, hooks, session.options.parallelism)
    interrupts = {"n": 0}

    def on_sigint(signum, frame):
        interrupts["n"] += 1
        if interrupts["n"] == 1:
            applier.stop()
            hooks.interrupted("Interrupt received: finishing what is in flight and recording "
                              "it. Press Ctrl-C again to abort at once.")
        else:
            import os

            err("Aborted. Every finished step is recorded; the next apply resumes from there.")
            os._exit(130)

    old = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    try:
        with live if live else contextlib.nullcontext():
            result = applier.apply(plan)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    # What providers did, not what was planned: a replacement whose create failed after its
    # delete is recorded as the delete it was.
    changes = [{"resource": e.resource, "action": e.action, "id": e.id, "provider": e.provider}
               for e in result.effects]
    failed = [{"resource": n, "action": "failed", "error": e} for n, e in result.failed.items()]
    status = "ok" if result.ok else ("interrupted" if result.interrupted else "failed")
    AuditLog(session.dir).append(command=command, result=status, changes=changes + failed,
                                 plan_digest=plan_digest,
                                 detail={"serial": result.state.serial,
                                         "skipped": sorted(result.skipped)})
    from ..incident_recovery import recoveries_from_apply, resolve

    resolve(session.dir, recoveries_from_apply(state, result), command,
            say=lambda line: err(f"  {line}"))
    _open_incidents(session, plan, result)
    _summary(result, plan)
    return result


def _open_incidents(session, plan, result) -> None:
    """A failed gate or a rolled-back rollout is an incident someone should look at; the
    engine opens them from the failures' typed kinds, this says so."""
    from ..incident_opening import open_for_apply
    from ..incidents import IncidentStore

    if not result.failures:
        return
    for incident in open_for_apply(IncidentStore(session.dir), plan, result):
        err(f"  incident {incident.id} opened: {incident.title} (mlform incidents show "
            f"{incident.id})")


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _summary(result, plan) -> None:
    words = {"create": "added", "update": "changed", "delete": "destroyed", "move": "moved"}
    counts = dict.fromkeys(words.values(), 0)
    for effect in result.effects:
        counts[words[effect.action]] += 1
    word = "Destroy" if plan.destroy else "Apply"
    moved = f", {counts['moved']} moved" if counts["moved"] else ""
    click.echo("")
    if result.ok:
        click.echo(f"{word} complete: {counts['added']} added, {counts['changed']} changed, "
                   f"{counts['destroyed']} destroyed{moved}.")
        return
    state = "interrupted" if result.interrupted else "finished with errors"
    click.echo(f"{word} {state}: {counts['added']} added, {counts['changed']} changed, "
               f"{counts['destroyed']} destroyed{moved}; {len(result.failed)} failed, "
               f"{len(result.skipped)} skipped, {len(result.not_started)} not started.")
    for name, error in result.failed.items():
        err(f"error: {name} failed: {error}")
    for name, why in result.skipped.items():
        err(f"  {name}: skipped because {why}")
    for name in result.not_started:
        err(f"  {name}: not started (interrupted)")


def _print_outputs(state, color: bool) -> None:
    from ..values import display

    if not state.outputs:
        return
    click.echo("\nOutputs:")
    for k, v in sorted(state.outputs.items()):
        click.echo(f"  {k} = {display(v)}")


@click.command("apply", help="Make the live stack match the spec, or apply a saved plan exactly.")
@click.argument("target_path", required=False, type=click.Path(path_type=Path),
                metavar="[PLANFILE | STACK_DIR]")
@common_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--refresh", "refresh", type=click.BOOL, default=True, show_default=True)
@click.option("--replace", "replace", multiple=True, metavar="NAME",
              help="Replace this resource even if unchanged.")
def apply_cmd(target_path, opts, auto_approve, refresh, replace):
    _apply_or_destroy(target_path, opts, auto_approve, refresh, replace, destroy=False)


@click.command("destroy", help="Destroy everything the stack manages (in reverse dependency "
                               "order, honouring prevent_destroy).")
@stack_argument
@common_options
@click.option("--auto-approve", is_flag=True, help="Destroy without asking for confirmation.")
def destroy_cmd(opts, auto_approve):
    _apply_or_destroy(None, opts, auto_approve, True, (), destroy=True)


def _apply_or_destroy(target_path, opts, auto_approve, refresh, replace, destroy: bool) -> None:
    from ..plan import planfile
    from ..session import Session
    from ..state.statefile import resource_from_json

    plan_path = None
    if target_path is not None:
        if target_path.is_dir():
            opts.stack_dir = target_path
        else:
            plan_path = target_path
    command = "destroy" if destroy else "apply"
    session = Session(opts, command)
    try:
        with session.locked():
            if plan_path is not None:
                doc = planfile.load(plan_path)
                state = session.read_state()
                if session.backend.read() is None and doc["serial"] == 0 and doc.get("salt"):
                    # No state was written yet: the plan's fresh lineage is the one to start.
                    state = dataclasses.replace(state, lineage=doc["lineage"], salt=doc["salt"])
                planfile.check_current(doc, plan_path, state.lineage, state.serial,
                                       session.stack.digest,
                                       planfile.variables_digest(session.variables, state.salt))
                plan = planfile.from_document(doc)
                from .review import refuse_failed

                refuse_failed(doc, f"plan file {plan_path}")
                prior = {n: resource_from_json(n, r) for n, r in doc.get("prior_state", {}).items()}
                state = dataclasses.replace(state, resources=prior)
            else:
                plan, doc, state = _plan(session, destroy, refresh, tuple(replace))
                render_plan(doc, plan, "text", opts.color)
                if not plan.has_changes():
                    if not destroy and any(f.kind == "adopted" for f in plan.drift):
                        # nothing to change, but what an interrupted apply created must
                        # be recorded, and the outputs that depend on it with it
                        state = run_apply(session, plan, state, command,
                                          planfile.digest(doc)).state
                    _print_outputs(state, opts.color)
                    return
                from .review import refuse_failed, report

                report(doc, session.stack)
                refuse_failed(doc, "these changes")
                _confirm(auto_approve, "destroy these resources" if destroy
                         else "perform these actions")
            result = run_apply(session, plan, state, command, planfile.digest(doc))
            if not destroy:
                _print_outputs(result.state, opts.color)
            if not result.ok:
                raise Exit(EXIT_ERROR)
    finally:
        session.close()
