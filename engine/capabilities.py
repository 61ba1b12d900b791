"""What a provider declares it supports, and the plan-time checks against it.

A provider lists, per resource type it realises, the outputs it produces and the
fields it does not honour (`TypeSupport`). The engine then refuses at `validate`
and `plan`, at the place in the spec, what would otherwise fail, or be silently
ignored, in the middle of an apply:

- a reference to an output the chosen provider does not produce (`${m.card}` on
  a provider without model cards);
- a field the provider does not honour: an error, or for a field it accepts and
  ignores on purpose, a note the plan shows;
- a field that belongs to another provider type (`endpoint.port` is the local
  provider's), unless the provider declares it understands it.

A provider that declares nothing for a type keeps the old behaviour: every output
of the type may be referenced, none is required, every field is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .diagnostics import Diagnostic
from .spec.models import PROVIDER_SPECIFIC, RESOURCE_TYPES
from .spec.outputs import OUTPUT_MODELS
from .spec.refs import RefSyntaxError, walk_refs

if TYPE_CHECKING:  # the provider contract imports the declarations below
    from .provider import Provider
    from .spec.loader import Stack

@dataclass(frozen=True)
class Unsupported:
    """A field a provider does not honour for one resource type."""

    path: tuple[str, ...]
    """The field, from the resource: `("rollback", "min_requests")`."""
    help: str
    """What to do instead, or, for a no-op, why it has no effect."""
    noop: bool = False
    """Accepted and ignored on purpose: the plan shows a note instead of refusing."""


@dataclass(frozen=True)
class TypeSupport:
    """A provider's support of one resource type."""

    outputs: frozenset[str] | None = None
    """The outputs it returns on every create and update: references may name them
    (and `id`), and a response missing one is an apply error. None: every output of
    the type may be referenced and none is required (a provider that declares nothing)."""
    unsupported: tuple[Unsupported, ...] = ()
    provider_specific: frozenset[tuple[str, ...]] = frozenset()
    """Fields marked for another provider type that this one understands all the same."""


def support(provider: Provider, rtype: str) -> TypeSupport:
    """What `provider` declares for `rtype` (the permissive default when nothing)."""
    return provider.capabilities.get(rtype) or TypeSupport()


def produced(provider: Provider, rtype: str) -> frozenset[str]:
    """The outputs a reference may name on this provider, besides `id`."""
    declared = support(provider, rtype).outputs
    return frozenset(OUTPUT_MODELS[rtype].model_fields) if declared is None else declared


def portable(provider: Provider, rtype: str) -> frozenset[str] | None:
    """The outputs state records apart from the provider's private data: every attribute
    of the type's output model, typed and read by the engine (an aws monitor's
    `last_evaluation` is one, though not returned on create and so not declared). None
    when the provider declares nothing for the type: all it returns stays in outputs."""
    if rtype not in OUTPUT_MODELS or support(provider, rtype).outputs is None:
        return None
    return frozenset(OUTPUT_MODELS[rtype].model_fields)


def output_error(provider: Provider, provider_name: str, rtype: str, name: str,
                 outputs: Mapping[str, Any], require: bool = True) -> str | None:
    """The error to report when `provider` returned outputs for resource `name` that do
    not fit the type's output model or leave out one it declares (a provider bug)."""
    from .spec.outputs import output_problems

    problems = output_problems(rtype, outputs, support(provider, rtype).outputs, require)
    if not problems:
        return None
    return (f"provider '{provider_name}' returned outputs for {rtype} '{name}' that do not "
            f"fit the {rtype} output model: {'; '.join(problems)} (a bug in the provider: "
            f"report it to its authors)")


def field_findings(stack: Stack, name: str, provider: Provider,
                   provider_type: str) -> tuple[list[Diagnostic], list[str]]:
    """(errors, notes) for the fields resource `name` sets that its provider does not
    honour. Only fields written in the spec count: a default is never the user's choice."""
    spec = stack.resources[name]
    declared = support(provider, spec.type)
    errors: list[Diagnostic] = []
    notes: list[str] = []
    for field in declared.unsupported:
        if not _is_set(spec.inputs, field.path):
            continue
        dotted = ".".join(field.path)
        if field.noop:
            notes.append(f"{spec.type}.{name}: '{dotted}' has no effect on provider "
                         f"'{spec.provider}' ({field.help})")
            continue
        errors.append(Diagnostic(
            f"provider '{spec.provider}' does not support '{dotted}' on a {spec.type}",
            location=stack.location(("resources", name) + field.path, key=True),
            help=field.help, address=name))
    for path, owner in provider_specific_fields(spec.type):
        if owner == provider_type or path in declared.provider_specific:
            continue
        if _is_set(spec.inputs, path):
            dotted = ".".join(path)
            kind = "" if provider_type == spec.provider else f" ({provider_type})"
            errors.append(Diagnostic(
                f"'{dotted}' is a setting of the {owner} provider; provider "
                f"'{spec.provider}'{kind} has no use for it",
                location=stack.location(("resources", name) + path, key=True),
                help=f"remove it: only a {owner} provider reads it", address=name))
    return errors, notes


def reference_errors(stack: Stack, owner: str | None, value: Any, path: tuple,
                     provider_of: Callable[[str], Provider | None]) -> list[Diagnostic]:
    """A diagnostic for each reference in `value` (found at `path` in the spec) to an
    output the target's provider does not produce; `provider_of` gives a resource's
    provider, or None when it cannot be had (its own error is reported elsewhere)."""
    from .spec.loader import _quoted

    errors = []
    for where, ref in _refs(value, path):
        if ref.is_var or ref.root not in stack.resources or ref.root == owner:
            continue
        attr = ref.path[0]
        target = stack.resources[ref.root]
        provider = provider_of(ref.root)
        if attr == "id" or provider is None or target.type not in OUTPUT_MODELS \
                or attr not in OUTPUT_MODELS[target.type].model_fields:
            continue  # unknown attributes are the loader's error
        made = produced(provider, target.type)
        if attr in made:
            continue
        loc = stack.location(where)
        if loc is not None:
            loc = replace(loc, column=loc.column + ref.offset + (1 if _quoted(loc) else 0),
                          length=len(str(ref)))
        errors.append(Diagnostic(
            f"provider '{target.provider}' does not produce '{attr}' for {target.type} "
            f"'{ref.root}' in '{ref}'", location=loc, address=owner or "",
            help=f"outputs of a {target.type} on provider '{target.provider}': "
                 f"{', '.join(['id', *sorted(made)])}"))
    return errors


def stack_reference_errors(stack: Stack,
                           provider_of: Callable[[str], Provider | None]) -> list[Diagnostic]:
    """`reference_errors` over every resource's fields and every stack output."""
    errors = []
    for name, spec in stack.resources.items():
        for key, value in spec.inputs.items():
            errors += reference_errors(stack, name, value, ("resources", name, key), provider_of)
    for oname, out in stack.file.outputs.items():
        errors += reference_errors(stack, None, out.value, ("outputs", oname, "value"),
                                   provider_of)
    return errors


def provider_specific_fields(rtype: str) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path, provider type) of each top-level field of `rtype` marked as one provider's."""
    model = RESOURCE_TYPES.get(rtype)
    for fname, info in (model.model_fields.items() if model else ()):
        extra = info.json_schema_extra
        if isinstance(extra, Mapping) and PROVIDER_SPECIFIC in extra:
            yield (fname,), str(extra[PROVIDER_SPECIFIC])


def _is_set(inputs: Mapping[str, Any], path: tuple[str, ...]) -> bool:
    cur: Any = inputs
    for part in path:
        if not isinstance(cur, Mapping) or part not in cur:
            return False
        cur = cur[part]
    return True


def _refs(value: Any, path: tuple) -> list:
    try:
        return list(walk_refs(value, path))
    except RefSyntaxError:
        return []  # the loader reports it
