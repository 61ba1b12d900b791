"""Read-only commands: validate, show, output, graph, providers, schema."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import common_options, stack_argument


@click.command("validate", help="Check the stack spec: syntax, schema, references, variables, "
                                  "provider configuration and resource inputs.")
@stack_argument
@common_options
def validate_cmd(opts):
    from ..checks import validate_stack
    from ..session import Session

    session = Session(opts, "validate")
    stack = session.stack
    # Resolving the variables reports missing or ill-typed values; the providers then
    # check their configuration and each resource's inputs, with no state.
    validate_stack(stack, session.variables)
    from ..policy.check import validate_policies

    rules = validate_policies(stack)  # compiled and checked; evaluated by plan
    click.echo(f"The stack '{stack.name}' is valid: {len(stack.resources)} resources, "
               f"{len(stack.providers)} provider(s).")
    if rules:
        click.echo(f"Its {rules} policy rule(s) are valid CEL over known fields.")


def _name_and_dir(args: tuple[str, ...], what: str) -> tuple[str | None, Path]:
    """`[NAME] [STACK_DIR]`: a lone argument that is a stack directory is taken as one."""
    from ..diagnostics import MlformError

    if len(args) > 2:
        raise MlformError.simple(f"too many arguments: expected [{what}] [STACK_DIR]",
                                 help=f"write: mlform {what.lower()} NAME path/to/stack")
    if len(args) == 2:
        return args[0], Path(args[1])
    if len(args) == 1 and (Path(args[0]) / "mlform.yaml").exists():
        return None, Path(args[0])
    return (args[0] if args else None), Path(".")


@click.command("show", help="Show the state, or one resource in detail (runs, versions, ...). "
                            "Arguments: [RESOURCE] [STACK_DIR].")
@click.argument("args", nargs=-1, metavar="[RESOURCE] [STACK_DIR]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-color", is_flag=True)
def show_cmd(args, as_json, no_color):
    from ..session import Options, Session
    from ..state.statefile import resource_to_json
    from ..values import display

    resource, stack_dir = _name_and_dir(args, "RESOURCE")
    session = Session(Options(stack_dir=stack_dir), "show")
    state = session.read_state()
    if resource:
        res = state.resources.get(resource)
        if res is None:
            from ..diagnostics import MlformError, did_you_mean

            raise MlformError.simple(f"no resource '{resource}' in state",
                                     help=did_you_mean(resource, state.resources)
                                     or "list them with 'mlform state list'")
        # `outputs` are what references reach, `private` the provider's own data
        # (always present here, so that a script need not test for it).
        doc = {"private": {}, **display(resource_to_json(res, state.salt))}
        if as_json:
            click.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
            return
        _show_resource(resource, doc)
        return
    if as_json:
        click.echo(json.dumps({"lineage": state.lineage, "serial": state.serial,
                               "resources": {n: {"private": {},
                                                 **display(resource_to_json(r, state.salt))}
                                             for n, r in state.resources.items()},
                               "outputs": display(state.outputs)},
                              indent=2, sort_keys=True, default=str))
        return
    if not state.resources:
        click.echo("The state is empty: nothing has been applied yet.")
        return
    click.echo(f"Stack '{state.stack}', state serial {state.serial} (lineage {state.lineage})\n")
    for name, res in sorted(state.resources.items()):
        status = "" if res.status == "ready" else f"  [{res.status}]"
        click.echo(f"{res.type}.{name}  id={res.id}{status}")
        for key in ("uri", "artifact", "url", "version", "metrics"):
            if key in res.outputs:
                click.echo(f"    {key} = {display(res.outputs[key])}")
    if state.outputs:
        click.echo("\nOutputs:")
        for k, v in sorted(state.outputs.items()):
            click.echo(f"  {k} = {display(v)}")


def _show_resource(name: str, doc: dict) -> None:
    click.echo(f"{doc['type']}.{name}  id={doc.get('id')}  "
               f"provider={doc.get('provider')}  status={doc.get('status')}")
    outputs = doc.get("outputs") or {}
    history = {k: outputs[k] for k in ("runs", "versions") if k in outputs}
    for key, value in sorted(outputs.items()):
        if key in history:
            continue
        click.echo(f"  {key} = {json.dumps(value, default=str)}")
    for key, rows in history.items():
        click.echo(f"\n  {key}:")
        for row in rows or []:
            click.echo("    " + "  ".join(f"{k}={json.dumps(v, default=str)}"
                                          for k, v in row.items()))
    if doc.get("private"):
        click.echo("\n  private (the provider's own data; references cannot reach it):")
        for key, value in sorted(doc["private"].items()):
            click.echo(f"    {key} = {json.dumps(value, default=str)}")
    click.echo("\n  inputs:")
    for key, value in sorted((doc.get("inputs") or {}).items()):
        click.echo(f"    {key} = {json.dumps(value, default=str)}")


@click.command("output", help="Print the stack's output values. Arguments: [NAME] [STACK_DIR].")
@click.argument("args", nargs=-1, metavar="[NAME] [STACK_DIR]")
@click.option("--json", "as_json", is_flag=True)
@click.option("--raw", is_flag=True, help="Print one output's value without quoting.")
def output_cmd(args, as_json, raw):
    from ..diagnostics import MlformError, did_you_mean
    from ..session import Options, Session
    from ..values import display

    name, stack_dir = _name_and_dir(args, "NAME")
    state = Session(Options(stack_dir=stack_dir), "output").read_state()
    outputs = display(state.outputs)
    if name:
        if name not in outputs:
            raise MlformError.simple(f"no output '{name}'",
                                     help=did_you_mean(name, outputs)
                                     or f"outputs: {', '.join(outputs) or 'none (apply first)'}")
        value = outputs[name]
        click.echo(value if raw and isinstance(value, str) else json.dumps(value, default=str))
        return
    if as_json:
        click.echo(json.dumps(outputs, indent=2, sort_keys=True, default=str))
        return
    for k, v in sorted(outputs.items()):
        click.echo(f"{k} = {json.dumps(v, default=str)}")


@click.command("graph", help="Print the dependency graph (DOT or Mermaid).")
@stack_argument
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot",
              show_default=True)
def graph_cmd(stack_dir, fmt):
    from ..graph import Graph
    from ..spec.loader import load_stack

    stack = load_stack(stack_dir)
    graph = Graph({n: r.dependencies for n, r in stack.resources.items()})
    labels = {n: f"{r.type}.{n}" for n, r in stack.resources.items()}
    click.echo(graph.to_mermaid(labels) if fmt == "mermaid" else graph.to_dot(labels, stack.name),
               nl=False)


@click.command("providers", help="List provider types installed and those the stack uses.")
@click.argument("stack_dir", required=False, default=None)
def providers_cmd(stack_dir):
    from ..registry import available

    eps = available()
    click.echo("Installed provider types:")
    for name, ep in sorted(eps.items()):
        click.echo(f"  {name:8} {ep.value}")
    if stack_dir is not None or __import__("os").path.exists("mlform.yaml"):
        from ..spec.loader import load_stack

        stack = load_stack(stack_dir or ".")
        click.echo(f"\nProviders of stack '{stack.name}':")
        for name, spec in stack.providers.items():
            ok = "installed" if spec.type in eps else "NOT INSTALLED"
            users = [r for r, s in stack.resources.items() if s.provider == name]
            click.echo(f"  {name} (type {spec.type}, {ok}): {len(users)} resource(s)")


@click.command("schema", help="Print the JSON Schema of the stack format.")
def schema_cmd():
    from ..spec.schema import schema_json

    click.echo(schema_json(), nl=False)
