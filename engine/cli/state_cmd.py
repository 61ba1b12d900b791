"""`mlform state list|show|rm|mv|unlock|migrate|accept` and `mlform import`."""

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


def _audit(session, command: str, changes: list[dict], serial: int,
           detail: dict | None = None) -> None:
    from ..audit import AuditLog

    AuditLog(session.dir).append(command=command, result="ok", changes=changes,
                                 plan_digest=None, detail={"serial": serial, **(detail or {})})


@click.group("state", help="Inspect and edit the state: list, show, rm, mv, unlock, migrate, "
                           "accept.")
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


@state_group.command("migrate", help="Move the state to the backend mlform.yaml names now, "
                                      "after 'backend:' changed.")
@stack_argument
@click.option("--reconfigure", is_flag=True,
              help="Do not copy: use the new backend as it is and leave the previous state "
                   "behind (its resources stay live, unmanaged).")
@click.option("--force", is_flag=True,
              help="Overwrite another non-empty state in the new backend.")
@click.option("--lock-timeout", default="0s", metavar="DURATION",
              help="How long to wait for each backend's lock.")
def state_migrate(stack_dir, reconfigure, force, lock_timeout):
    from ..session import backend_from_settings, lock_held_error
    from ..state.backend import LockHeld, LockInfo
    from ..state.migrate import ALREADY_THERE, COPIED, migrate
    from ..state.record import BackendRecord, same_backend

    if reconfigure and force:
        raise MlformError.simple("--reconfigure and --force cannot be used together",
                                 help="--reconfigure copies nothing, so there is nothing to "
                                      "force")
    session = _session(stack_dir, "state migrate", lock_timeout)
    tracked = session.backend
    record = tracked.recorded()
    if record is None or same_backend(record.backend, tracked.settings):
        tracked.read()  # records the backend, and checks its state as any command does
        click.echo(f"Nothing to migrate: this stack already uses {tracked.describe()}.")
        return
    source = backend_from_settings(session.dir, record.backend)
    if reconfigure:
        state = tracked.accept()
        _audit(session, "state migrate", [], state.serial if state else 0,
               {"from": source.describe(), "to": tracked.describe(), "copied": False})
        click.echo(f"This stack now uses {tracked.describe()} ({_holds(state)}). The state in "
                   f"{source.describe()} was left where it is and is no longer used.")
        return
    try:
        done = migrate(source, tracked.inner, LockInfo.mine("state migrate"),
                       session.options.lock_timeout, force)
    except LockHeld as exc:
        raise lock_held_error(exc) from None
    state = done.state
    tracked.store.save(BackendRecord(tracked.settings, state.lineage if state else None,
                                     state.serial if state else None))
    _audit(session, "state migrate", [], state.serial if state else 0,
           {"from": source.describe(), "to": tracked.describe(),
            "copied": done.outcome == COPIED})
    if done.outcome == COPIED:
        assert state is not None, "a copy leaves the copied state"
        click.echo(f"Copied the state ({_holds(state)}, lineage {state.lineage}, serial "
                   f"{state.serial}) from {source.describe()} to {tracked.describe()}.")
        click.echo(f"The copy in {source.describe()} is no longer used; remove it once "
                   "'mlform plan' shows what you expect.")
    elif done.outcome == ALREADY_THERE:
        assert state is not None, "the target holds this state"
        click.echo(f"{tracked.describe()} already holds this state (serial {state.serial}); "
                   "this stack now uses it.")
    else:
        click.echo(f"{source.describe()} holds no state; this stack now uses "
                   f"{tracked.describe()}.")


@state_group.command("accept", help="Accept the state the backend holds now as this stack's "
                                     "(after restoring or replacing it on purpose).")
@stack_argument
def state_accept(stack_dir):
    from ..state.record import same_backend

    session = _session(stack_dir, "state accept")
    tracked = session.backend
    record = tracked.recorded()
    if record is not None and not same_backend(record.backend, tracked.settings):
        raise MlformError.simple(
            f"the backend changed: this stack last used another one than {tracked.describe()}",
            help="run 'mlform state migrate' to move the state (or 'mlform state migrate "
                 "--reconfigure' to leave it behind)")
    state = tracked.accept()
    _audit(session, "state accept", [], state.serial if state else 0,
           {"lineage": state.lineage if state else None,
            "previous_lineage": record.lineage if record else None,
            "previous_serial": record.serial if record else None})
    if state is None:
        click.echo(f"Accepted: {tracked.describe()} holds no state; the next apply starts "
                   "a new one.")
    else:
        click.echo(f"Accepted {tracked.describe()} as this stack's state: lineage "
                   f"{state.lineage}, serial {state.serial}, {_holds(state)}.")


def _holds(state) -> str:
    n = len(state.resources) if state else 0
    return f"{n} resource{'s' if n != 1 else ''}"


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
        from ..capabilities import portable

        res = ResourceState(name=name, type=spec.type, provider=spec.provider,
                            id=got.id or resource_id, inputs=got.inputs or {},
                            outputs={}, dependencies=tuple(spec.dependencies),
                            provider_type=stack.providers[spec.provider].type,
                            ).with_provider_outputs(got.outputs or {},
                                                    portable(provider, spec.type))
        state = state.with_resource(res).next_serial()
        session.backend.write(state)
        _audit(session, "import", [{"resource": name, "action": "import"}], state.serial)
    click.echo(f"Imported {name} ({res.id}). Run 'mlform plan' to see how it differs from "
               "the spec.")
