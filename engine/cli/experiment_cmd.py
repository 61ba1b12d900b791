"""`mlform experiment`: each endpoint experiment's verdict, measured now.

It is one controller pass over the endpoints (the same one `mlform watch` runs): the
verdict is recorded in state, a decided one is written to the audit log, and a winner
the spec asks to promote is rolled out. `--detailed-exitcode` exits 2 while any
experiment is still collecting, for a CI job that waits for a decision.
"""

from __future__ import annotations

import json

import click

from .common import EXIT_CHANGES, Exit, common_options, stack_argument


@click.command("experiment", help="Show the verdict of each endpoint's A/B experiment.")
@stack_argument
@common_options
@click.option("--endpoint", "endpoints", multiple=True, metavar="NAME",
              help="Only this endpoint (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 while an experiment is still collecting (0 all decided).")
def experiment_cmd(opts, endpoints, fmt, detailed_exitcode):
    from ..audit import AuditLog
    from ..controller.experiments import run_experiments
    from ..controller.lock import holding_lock
    from ..controller.ticks import PassResult
    from ..diagnostics import MlformError
    from ..session import Session
    from .watch_cmd import _retrain

    session = Session(opts, "experiment")
    try:
        for name in endpoints:
            spec = session.stack.resources.get(name)
            if spec is None or spec.type != "endpoint":
                raise MlformError.simple(f"--endpoint names no endpoint '{name}'")
        outcome = PassResult()
        ticks = run_experiments(session, click.echo if fmt == "text" else _quiet,
                                lambda: holding_lock(session, _quiet, keep_waiting=False),
                                lambda request: _retrain(session, request), outcome,
                                AuditLog(session.dir))
    finally:
        session.close()
    verdicts = {t.name: (t.response.outputs or {})["experiment"] for t in ticks
                if not endpoints or t.name in endpoints}
    if not verdicts:
        raise MlformError.simple("no endpoint in this stack runs an experiment",
                                 help="add 'experiment: {name: ..., key: ...}' to an endpoint")
    if fmt == "json":
        click.echo(json.dumps(verdicts, indent=2, sort_keys=True))
    else:
        for name, verdict in verdicts.items():
            click.echo(render(name, verdict))
    if outcome.errors:
        raise Exit(1)
    if detailed_exitcode and any(v["status"] == "collecting" for v in verdicts.values()):
        raise Exit(EXIT_CHANGES)


def _quiet(_line: str) -> None:
    pass


def render(name: str, verdict: dict) -> str:
    """A verdict as a person reads it: a headline, a row per variant, the test."""
    head = {"winner": f"winner: {verdict['winner']}", "no_difference": "no difference",
            "collecting": "collecting (no verdict yet)"}[verdict["status"]]
    lines = [f"endpoint {name}: experiment {verdict['name']}: {head}",
             f"  metric {verdict['metric']}, {verdict['test'].replace('_', ' ')} test, "
             f"alpha {verdict['alpha']:g}, control {verdict['control']}",
             f"  {'variant':<16} {'requests':>9} {'observed':>9} {'mean':>9} {'auc':>7} "
             f"{'errors':>7} {'p99 ms':>8}"]
    for variant, row in verdict["variants"].items():
        mean = "-" if row["mean"] is None else f"{row['mean']:.4f}"
        served = row.get("serving") or {}
        rate = served.get("error_rate")
        errors = "-" if rate is None else f"{100 * rate:.1f}%"
        p99 = "-" if served.get("p99_ms") is None else f"{served['p99_ms']:.1f}"
        auc = "-" if row.get("auc") is None else f"{row['auc']:.3f}"
        lines.append(f"  {variant:<16} {row['requests']:>9} {row['observations']:>9} "
                     f"{mean:>9} {auc:>7} {errors:>7} {p99:>8}")
    for challenger, c in verdict["comparisons"].items():
        parts = [f"{challenger} vs {verdict['control']}:"]
        if c["difference"] is not None:
            parts.append(f"difference {c['difference']:+.4f}")
        if c["interval"]:
            parts.append(f"[{c['interval'][0]:+.4f}, {c['interval'][1]:+.4f}]")
        if c["p_value"] is not None:
            parts.append(f"p={c['p_value']:.3g}")
        if c["required_per_arm"]:
            parts.append(f"(n per variant {min(c['n_a'], c['n_b'])}/"
                         f"{c['required_per_arm']} required)")
        lines.append("  " + " ".join(parts))
    return "\n".join(lines)
