"""`mlform state list|show|rm|mv|unlock` and `mlform import`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..diagnostics import MlformError, did_you_mean
from .common import stack_argument


def _session(stack_dir, command: str, lock_timeout: str = "0s"):
    from ..session import Options, Session, parse_duration

    return Session(Options(stack_dir=stack_dir, lock_timeout=parse_duration(lock_timeout)),
                   command)


def _need(state, name: str):
    if name not in state.resources:
        raise MlformError.simple(f"no resource '{name}' in state",
                                 help=did_you_mean(name, state.resources)
                                 or "list them with 'mlform state list'")
    return state.resources[name]


def _audit(session, command: str, changes: list[dict], serial: int) -> None:
    from ..audit import AuditLog

    AuditLog(session.dir).append(command=command, result="ok", changes=changes,
                                 plan_digest=None, detail={"serial": serial})


@click.group("state", help="Inspect and edit the state: list, show, rm, mv, unlock.")
def state_group():
    pass


@state_group.command("list", help="List the resources in state.")
@stack_argument
def state_list(stack_dir):
    state = _session(stack_dir, "state list").read_state()
    for name, res in sorted(state.resources.items()):
        click.echo(f"{name}\t{res.type}\t{res.provider}\t{res.id}\t{res.status}")


@state_group.command("show", help="Show one resource's recorded state as JSON.")
@click.argument("name")
@stack_argument
def state_show(name, stack_dir):
    from ..state.statefile import resource_to_json
    from ..values import display

    state = _session(stack_dir, "state show").read_state()
    res = _need(state, name)
    click.echo(json.dumps(display(resource_to_json(res, state.salt)), indent=2,
                          sort_keys=True, default=str))


@state_group.command("rm", help="Forget a resource without destroying it.")
@click.argument("names", nargs=-1, required=True, metavar="NAME... [STACK_DIR]")
@click.option("--lock-timeout", default="0s")
def state_rm(names, lock_timeout):
    names, stack_dir = _split_stack_dir(names)
    session = _session(stack_dir, "state rm", lock_timeout)
    with session.locked():
        state = session.read_state()
        for name in names:
            _need(state, name)
            state = state.without(name)
        state = state.next_serial()
        session.backend.write(state)
        _audit(session, "state rm", [{"resource": n, "action": "forget"} for n in names],
               state.serial)
    for name in names:
        click.echo(f"Removed {name} from state (the live resource was not touched).")


def _split_stack_dir(args: tuple[str, ...]) -> tuple[tuple[str, ...], Path]:
    """Names, then an optional stack directory: click cannot tell them apart after `NAME...`."""
    if len(args) > 1 and (Path(args[-1]) / "mlform.yaml").is_file():
        return args[:-1], Path(args[-1])
    return args, Path(".")


@state_group.command("mv", help="Rename a resource in state (after renaming it in the spec).")
@click.argument("source")
@click.argument("destination")
@stack_argument
@click.option("--lock-timeout", default="0s")
def state_mv(source, destination, stack_dir, lock_timeout):
    session = _session(stack_dir, "state mv", lock_timeout)
    with session.locked():
        state = session.read_state()
        res = _need(state, source)
        if destination in state.resources:
            raise MlformError.simple(f"'{destination}' already exists in state",
                                     help="remove it first with 'mlform state rm'")
        state = state.without(source).with_resource(res.with_(name=destination))
        # Dependents recorded under the old name follow the move.
        for other in list(state.resources.values()):
            if source in other.dependencies:
                deps = tuple(destination if d == source else d for d in other.dependencies)
                state = state.with_resource(other.with_(dependencies=deps))
        state = state.next_serial()
        session.backend.write(state)
        _audit(session, "state mv", [{"resource": source, "action": f"move to {destination}"}],
               state.serial)
    click.echo(f"Moved {source} to {destination}.")


@state_group.command("unlock", help="Release a lock left by a command that died elsewhere.")
@click.argument("lock_id")
@stack_argument
def state_unlock(lock_id, stack_dir):
    session = _session(stack_dir, "state unlock")
    holder = session.backend.holder()
    session.backend.unlock(lock_id, force=True)
    click.echo(f"Released lock {lock_id}" + (f" ({holder.describe()})." if holder else "."))


@click.command("import", help="Adopt an existing resource into state by its provider id.")
@click.argument("name")
@click.argument("resource_id")
@stack_argument
@click.option("--var", "vars_", multiple=True, metavar="NAME=VALUE")
@click.option("--var-file", "var_files", multiple=True, metavar="FILE")
@click.option("--lock-timeout", default="0s")
def import_cmd(name, resource_id, stack_dir, vars_, var_files, lock_timeout):
    from ..provider import ObserveRequest
    from ..providerset import ref
    from ..state.model import ResourceState

    session = _session(stack_dir, "import", lock_timeout)
    session.options.vars, session.options.var_files = list(vars_), list(var_files)
    stack = session.stack
    if name not in stack.resources:
        raise MlformError.simple(f"no resource '{name}' in the spec",
                                 help=did_you_mean(name, stack.resources)
                                 or "write the resource in mlform.yaml first, then import it")
    spec = stack.resources[name]
    with session.locked():
        state = session.read_state()
        if name in state.resources:
            raise MlformError.simple(f"'{name}' is already in state",
                                     help="'mlform state rm' it first to import another")
        provider = session.providers.get(spec.provider)
        got = provider.observe(ObserveRequest(resource=ref(name, spec.type, resource_id),
                                              inputs=None, outputs=None))
        if got.error or not got.exists:
            raise MlformError.simple(
                f"cannot import '{name}': provider '{spec.provider}' finds no {spec.type} "
                f"with id '{resource_id}'" + (f": {got.error}" if got.error else ""),
                help="check the id (the provider's own name or ARN for it)")
        res = ResourceState(name=name, type=spec.type, provider=spec.provider,
                            id=got.id or resource_id, inputs=got.inputs or {},
                            outputs=got.outputs or {}, dependencies=tuple(spec.dependencies),
                            provider_type=stack.providers[spec.provider].type)
        state = state.with_resource(res).next_serial()
        session.backend.write(state)
        _audit(session, "import", [{"resource": name, "action": "import"}], state.serial)
    click.echo(f"Imported {name} ({res.id}). Run 'mlform plan' to see how it differs from "
               "the spec.")
