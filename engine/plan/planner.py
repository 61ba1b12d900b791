"""Computing a plan: desired inputs against refreshed state, resource by resource.

Resources are visited in dependency order so that each one's references can use
what its dependencies will become: their planned outputs, or `Unknown` where
only an apply will tell.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import Diagnostic, MlformError
from ..evaluate import Evaluator
from ..graph import Graph
from ..provider import DiffRequest
from ..providerset import ProviderSet, ref
from ..redaction import scrub
from ..spec.loader import Stack
from ..spec.refs import walk_refs
from ..state.model import ResourceState, State
from ..values import Unknown, display, same_value
from .model import Action, AttributeDiff, Plan, ResourceChange

RERUN_TYPES = {"training_job": "re-run", "batch_job": "re-run", "feature_view": "re-materialize"}


@dataclass
class PlanOptions:
    targets: tuple[str, ...] = ()
    destroy: bool = False
    replace: tuple[str, ...] = ()
    drift: tuple = ()
    notes: dict[str, str] = field(default_factory=dict)


def make_plan(stack: Stack, state: State, variables: dict[str, Any], providers: ProviderSet,
              options: PlanOptions | None = None) -> Plan:
    options = options or PlanOptions()
    _check_targets(stack, state, options)
    graph = Graph({n: r.dependencies for n, r in stack.resources.items()})
    if options.destroy:
        changes = _destroy_changes(stack, state, graph, options)
        return Plan(stack=stack.name, lineage=state.lineage, serial=state.serial,
                    spec_digest=stack.digest, changes=tuple(changes), destroy=True,
                    targets=options.targets, drift=tuple(options.drift))
    scope = graph.upstream(options.targets) if options.targets else set(stack.resources)
    planned: dict[str, ResourceChange] = {}

    def attributes(name: str):
        change = planned.get(name)
        prior = state.resources.get(name)
        if change is None:  # outside the targets: what state knows
            return None if prior is None else {**prior.outputs, "id": prior.id}
        if change.action is Action.NOOP and prior is not None:
            return {**prior.outputs, "id": prior.id}
        return change.planned_outputs

    evaluator = Evaluator(stack, variables, attributes)
    errors: list[Diagnostic] = []
    notes: list[str] = []
    if not options.targets:
        errors += _output_reference_errors(stack, providers)
    for name in graph.order():
        if name not in scope or name not in stack.resources:
            continue
        try:
            planned[name] = _plan_resource(stack, state, name, evaluator, providers, planned,
                                           options, notes)
        except MlformError as exc:
            errors.extend(exc.diagnostics)
    if errors:
        raise MlformError(*errors)
    changes = [planned[n] for n in graph.order() if n in planned]
    changes += _orphan_deletes(stack, state, options)
    try:
        outputs = evaluator.outputs() if not options.targets else {}
    except MlformError:
        outputs = {}
    output_changes = () if options.targets else tuple(
        AttributeDiff(name, state.outputs.get(name), outputs.get(name))
        for name in sorted(set(outputs) | set(state.outputs))
        if not same_value(state.outputs.get(name), outputs.get(name)))
    return Plan(stack=stack.name, lineage=state.lineage, serial=state.serial,
                spec_digest=stack.digest, changes=tuple(changes), outputs=outputs,
                targets=options.targets, drift=tuple(options.drift),
                output_changes=output_changes, notes=tuple(notes))


def _check_targets(stack: Stack, state: State, options: PlanOptions) -> None:
    from ..diagnostics import did_you_mean

    known = set(stack.resources) | set(state.resources)
    for flag, names in (("--target", options.targets), ("--replace", options.replace)):
        for t in names:
            if t not in known:
                hint = did_you_mean(t, known)
                raise MlformError.simple(f"{flag} names unknown resource '{t}'",
                                         help=hint or f"resources: {', '.join(sorted(known))}")


def _plan_resource(stack: Stack, state: State, name: str, evaluator: Evaluator,
                   providers: ProviderSet, planned: dict[str, ResourceChange],
                   options: PlanOptions, notes: list[str]) -> ResourceChange:
    spec = stack.resources[name]
    prior = state.resources.get(name)
    from mlform.ml.experiments.promotion import desired_inputs

    # the applier calls the same function: an apply realises what this plan shows
    desired, promoted = desired_inputs(spec.type, evaluator.inputs(name),
                                       prior.provider_outputs if prior is not None else None)
    provider = providers.get(spec.provider)
    from ..checks import unrealised_type

    unrealised = unrealised_type(stack, name, provider)
    if unrealised:
        raise MlformError(unrealised)
    notes += _check(stack, name, provider, desired, evaluator, providers)
    deps = tuple(spec.dependencies)
    lifecycle = spec.model.lifecycle
    moved_provider = prior is not None and (prior.provider != spec.provider
                                            or prior.type != spec.type)
    base = None if prior is None or moved_provider else prior
    resp = provider.diff(DiffRequest(
        resource=ref(name, spec.type, base.id if base else None),
        prior_inputs=base.inputs if base else None,
        prior_outputs=base.provider_outputs if base else None,
        desired_inputs=desired))
    if resp.error:
        raise MlformError(Diagnostic(f"cannot plan '{name}': {scrub(resp.error, desired)}",
                                     location=stack.location(("resources", name), key=True),
                                     address=name))
    if moved_provider or prior is None:
        from ..moves.decide import plan_move

        move = plan_move(stack, state, name, desired, providers, planned, options.replace,
                         resp.planned_outputs)
        if move is not None:
            return move
    attrs = [AttributeDiff(c.path, c.before, c.after, c.forces_replacement, c.reason)
             for c in resp.changes
             if not _ignored(c.path, lifecycle.ignore_changes)]
    reasons = _reasons(stack, name, attrs, planned, state, resp.note)
    if promoted and attrs:
        reasons.insert(0, promoted)
    forced: list[str] = [a.path for a in attrs if a.forces_replacement]

    if prior is None:
        action = Action.CREATE
        reasons = reasons or ["not yet created"]
    else:
        if moved_provider:
            forced.append("provider")
            reasons.insert(0, f"moves from provider '{prior.provider}' to '{spec.provider}'"
                           if prior.provider != spec.provider else
                           f"type changes from {prior.type} to {spec.type}")
        if prior.status == "tainted":
            forced.append("(tainted)")
            reasons.insert(0, "tainted: a previous apply failed part-way or it is unhealthy")
        if name in options.replace:
            forced.append("(requested)")
            reasons.insert(0, options.notes.get(name, "replacement requested"))
        if forced:
            action = Action.CREATE_DELETE \
                if create_before_destroy(spec.type, lifecycle, moving=moved_provider) \
                else Action.DELETE_CREATE
            if lifecycle.prevent_destroy:
                raise MlformError(Diagnostic(
                    f"'{name}' must be replaced, but lifecycle.prevent_destroy is set",
                    location=stack.location(("resources", name, "lifecycle", "prevent_destroy")),
                    detail=f"forced by: {', '.join(forced)}",
                    help="undo the change that forces the replacement, or remove "
                         "prevent_destroy deliberately"))
        elif attrs or resp.note:
            action = Action.UPDATE
        else:
            action = Action.NOOP
    planned_outputs: dict[str, Any]
    if action is Action.NOOP:
        planned_outputs = dict(prior.outputs) if prior else {}
        planned_outputs["id"] = prior.id if prior else None
    else:
        from ..spec.models import RESOURCE_OUTPUTS

        planned_outputs = {a: Unknown(f"{name}.{a}") for a in RESOURCE_OUTPUTS.get(spec.type, {})}
        planned_outputs["id"] = prior.id if prior and action is Action.UPDATE \
            else Unknown(f"{name}.id")
        planned_outputs.update(resp.planned_outputs)
    return ResourceChange(
        name=name, type=spec.type, provider=spec.provider, action=action,
        before=prior.inputs if prior else None, after=desired, attributes=tuple(attrs),
        reasons=tuple(reasons), replace_paths=tuple(forced), planned_outputs=planned_outputs,
        dependencies=deps)


SERVING_TYPES = frozenset({"model", "endpoint"})
"""Types whose replacement creates the new object first unless the spec says otherwise:
deleting first would leave nothing serving if the new one fails (a gate, a rollout)."""


def create_before_destroy(rtype: str, lifecycle, moving: bool = False) -> bool:
    """The order of a replacement: the spec's, else new-first for what serves and for a
    move to another provider (the old object stays whole until the new one exists)."""
    if lifecycle.create_before_destroy is not None:
        return lifecycle.create_before_destroy
    return moving or rtype in SERVING_TYPES


def _check(stack: Stack, name: str, provider, desired: dict[str, Any],
           evaluator: Evaluator, providers: ProviderSet) -> list[str]:
    """The provider's checks of the desired inputs and what it declares it supports,
    before the diff: a mistake is reported here at its place in the spec, not after a
    long apply. Returns the notes on fields the provider ignores on purpose."""
    from ..checks import check_capabilities, check_inputs, unrepeated

    refused, notes = check_capabilities(stack, name, provider, _provider_of(stack, providers))
    problems = refused + unrepeated(check_inputs(stack, name, provider, desired,
                                                 evaluator.attributes), refused)
    if problems:
        raise MlformError(*problems)
    return notes


def _provider_of(stack: Stack, providers: ProviderSet):
    def provider_of(name: str):
        try:
            return providers.get(stack.resources[name].provider)
        except MlformError:
            return None  # reported where that resource is planned
    return provider_of


def _output_reference_errors(stack: Stack, providers: ProviderSet) -> list[Diagnostic]:
    from ..checks import check_output_references

    return check_output_references(stack, _provider_of(stack, providers))


def _ignored(path: str, ignore: list[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in ignore)


def _reasons(stack: Stack, name: str, attrs: list[AttributeDiff],
             planned: dict[str, ResourceChange], state: State, note: str) -> list[str]:
    """Why each attribute changes: an upstream resource changed, or the spec did."""
    spec = stack.resources[name]
    verb = RERUN_TYPES.get(spec.type, "update")
    out: list[str] = []
    if note:
        out.append(note)
    for attr in attrs:
        raw = _raw_at(spec.inputs, attr.path)
        upstream = []
        with contextlib.suppress(ValueError):
            upstream = [r for _, r in walk_refs(raw) if not r.is_var]
        explained = False
        for r in upstream:
            up = planned.get(r.root)
            if up is None or up.action is Action.NOOP:
                continue
            prior = state.resources.get(r.root)
            before = prior.outputs.get(r.path[0]) if prior else None
            after = up.planned_outputs.get(r.path[0])
            change_text = (f"{r.path[0]} {_short_change(before, after)}"
                           if before is not None else f"{r.path[0]} is new")
            must = "must " + (verb if attr.forces_replacement or verb != "update" else "update")
            out.append(f"{up.type} {r.root} changed: {change_text}, so {name} {must}")
            explained = True
        if not explained:
            if raw is None and (attr.before is None or note):
                continue  # an attribute the provider derives; its note says why
            kind = "forces replacement" if attr.forces_replacement else "changed"
            where = " in the spec" if raw is not None else ""
            why = f" ({attr.reason})" if attr.reason else ""
            out.append(f"{attr.path} {kind}{where}: "
                       f"{_short_change(attr.before, attr.after)}{why}")
    return list(dict.fromkeys(out))


def _raw_at(inputs: dict, path: str) -> Any:
    cur: Any = inputs
    for seg in path.split("."):
        if isinstance(cur, dict) and seg in cur:
            cur = cur[seg]
        else:
            return cur if isinstance(cur, str) else None
    return cur


def _short_change(before: Any, after: Any) -> str:
    """`before -> after`, shortened, yet telling two uris apart that end alike
    (`s3://.../<version>/data.csv`): each keeps its tail from the last part that differs."""
    short_before, short_after = _short(before), _short(after)
    if short_before != short_after or before == after or \
            not all(isinstance(v, str) and "://" in v for v in (before, after)):
        return f"{short_before} -> {short_after}"
    old, new = before.rstrip("/").split("/"), after.rstrip("/").split("/")
    common = 0
    while common < min(len(old), len(new)) - 1 and old[-1 - common] == new[-1 - common]:
        common += 1
    first_old, first_new = old[-1 - common], new[-1 - common]
    if first_old == first_new:  # one is the other's tail: only the whole tells them apart
        return f"{before} -> {after}"
    if first_old[:12] != first_new[:12]:
        first_old, first_new = first_old[:12], first_new[:12]
    tail = "/".join(old[len(old) - common:])
    return " -> ".join("/".join(p for p in (first, tail) if p)
                       for first in (first_old, first_new))


def _short(value: Any) -> str:
    if value is None:
        return "(unset)"
    value = display(value)
    if isinstance(value, str):
        if "://" in value:
            parts = value.rstrip("/").split("/")
            tail = parts[-1] if len(parts[-1]) >= 6 else "/".join(parts[-2:])
            return tail if len(tail) <= 24 else tail[:12]
        return value if len(value) <= 40 else value[:37] + "..."
    text = repr(value) if not isinstance(value, dict | list) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _orphan_deletes(stack: Stack, state: State, options: PlanOptions) -> list[ResourceChange]:
    """Resources in state that the spec no longer has: delete them, dependents first."""
    gone = [r for n, r in state.resources.items() if n not in stack.resources
            and (not options.targets or n in options.targets)]
    deposed = [r for r in gone if "~" in r.name]
    return _deletes([r for r in gone if "~" not in r.name], state, "no longer in the spec") + \
        _deletes(deposed, state, "the old object of a replacement: deleted once nothing that "
                                 "used it still changes")


def _destroy_changes(stack: Stack, state: State, graph: Graph,
                     options: PlanOptions) -> list[ResourceChange]:
    names = set(state.resources)
    if options.targets:
        state_graph = Graph({n: r.dependencies for n, r in state.resources.items()})
        names = state_graph.downstream(options.targets) & names
    blocked = [n for n in names if n in stack.resources
               and stack.resources[n].model.lifecycle.prevent_destroy]
    if blocked:
        raise MlformError(*[Diagnostic(
            f"'{n}' has lifecycle.prevent_destroy set and cannot be destroyed",
            location=stack.location(("resources", n, "lifecycle", "prevent_destroy")),
            help="remove prevent_destroy first, or leave it out with --target") for n in blocked])
    return _deletes([state.resources[n] for n in names], state, "destroy requested")


def _deletes(resources: list[ResourceState], state: State, reason: str) -> list[ResourceChange]:
    names = {r.name for r in resources}
    graph = Graph({r.name: [d for d in r.dependencies if d in names] for r in resources})
    return [ResourceChange(name=n, type=state.resources[n].type,
                           provider=state.resources[n].provider, action=Action.DELETE,
                           before=state.resources[n].inputs, after=None,
                           reasons=(reason,), dependencies=state.resources[n].dependencies)
            for n in graph.reverse_order()]
