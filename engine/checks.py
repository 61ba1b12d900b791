"""Provider checks of what a user wrote, located in the spec: each resource's inputs
through its provider's `check` verb, and each provider's configuration.

`plan` runs `check_inputs` on every resource before its diff, with the attributes
its references will have; `validate` runs `validate_stack`, which knows no state:
every reference to another resource is unknown there, and checks skip unknowns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .diagnostics import Diagnostic, MlformError
from .provider import CheckRequest, Problem, Provider
from .providerset import ProviderSet, ref
from .spec.loader import Stack
from .spec.refs import RefSyntaxError, is_whole_ref, parse_ref

ProviderOf = Callable[[str], Provider | None]
"""Resource name -> its provider, or None where that provider cannot be had."""

Attributes = Callable[[str], Mapping[str, Any] | None]
"""Resource name -> its attributes as the plan knows them, or None (see `Evaluator`)."""


def check_inputs(stack: Stack, name: str, provider: Provider, inputs: dict[str, Any],
                 attributes: Attributes) -> list[Diagnostic]:
    """What `provider` finds wrong with the resource's desired `inputs`, each at the
    place in the spec it concerns."""
    spec = stack.resources[name]
    resp = provider.check(CheckRequest(resource=ref(name, spec.type), inputs=inputs,
                                       upstream=_upstream(spec.inputs, attributes)))
    return [located(stack, ("resources", name), p, address=name) for p in resp.problems]


PORTABLE_ADVICE = {
    "gateway": "run the gateway on a 'local' provider: it fronts endpoints on any provider "
               "(see docs/migration.md)",
}
"""What to do instead when a provider does not realise a type, for providers that give
no advice of their own (`Provider.unsupported_types`)."""


def unrealised_type(stack: Stack, name: str, provider: Provider) -> Diagnostic | None:
    """The error for a resource whose provider does not realise its type, at the
    resource's `provider:` line (its `type:` line when the provider is implied), with
    the provider's own advice when it gives one; None when the type is realised."""
    spec = stack.resources[name]
    if spec.type in provider.resource_types:
        return None
    ptype = stack.providers[spec.provider].type
    named = spec.provider if spec.provider == ptype else f"{spec.provider}' ({ptype})"
    named = f"'{named}" if named.endswith(")") else f"'{named}'"
    article = "an" if spec.type[0] in "aeiou" else "a"
    written = "provider" in spec.model.model_fields_set
    supported = ", ".join(sorted(provider.resource_types))
    advice = provider.unsupported_types.get(spec.type) or PORTABLE_ADVICE.get(spec.type)
    return Diagnostic(
        f"provider {named} cannot realise {article} {spec.type} ('{name}')",
        location=stack.location(("resources", name, "provider" if written else "type")),
        help=(f"{advice}; " if advice else "") + f"it realises: {supported}",
        address=name)


def check_capabilities(stack: Stack, name: str, provider: Provider,
                       provider_of: ProviderOf) -> tuple[list[Diagnostic], list[str]]:
    """(errors, notes) for what resource `name` asks of providers beyond what they
    declare: fields its provider does not honour, references to outputs a provider
    does not produce (see `capabilities`)."""
    from .capabilities import field_findings, reference_errors

    spec = stack.resources[name]
    errors, notes = field_findings(stack, name, provider, stack.providers[spec.provider].type)
    for key, value in spec.inputs.items():
        errors += reference_errors(stack, name, value, ("resources", name, key), provider_of)
    return errors, notes


def check_output_references(stack: Stack, provider_of: ProviderOf) -> list[Diagnostic]:
    """References in the stack's `outputs:` to what a provider does not produce."""
    from .capabilities import reference_errors

    errors: list[Diagnostic] = []
    for oname, out in stack.file.outputs.items():
        errors += reference_errors(stack, None, out.value, ("outputs", oname, "value"),
                                   provider_of)
    return errors


def unrepeated(found: list[Diagnostic], refused: list[Diagnostic]) -> list[Diagnostic]:
    """`found` less what a capability error already says on the same line: a provider
    may check a field it also declares unsupported, and the user should read it once."""
    lines = {(d.location.file, d.location.line) for d in refused if d.location}
    return [d for d in found if not d.location
            or (d.location.file, d.location.line) not in lines]


def located(stack: Stack, base: tuple, problem: Problem | str, address: str = "") -> Diagnostic:
    """A provider's problem as a diagnostic at `base + problem.path` in the spec."""
    if isinstance(problem, str):
        return Diagnostic(problem, location=stack.location(base, key=True), address=address)
    return Diagnostic(problem.message, location=stack.location(base + problem.path,
                                                               key=problem.key),
                      help=problem.help, address=address)


def validate_stack(stack: Stack, variables: Mapping[str, Any]) -> None:
    """Raise every problem found in the providers' configurations and, for the providers
    configured well, in their resources' inputs."""
    from .evaluate import Evaluator

    providers = ProviderSet.for_stack(stack)
    diagnostics: list[Diagnostic] = []
    usable: dict[str, Provider] = {}
    try:
        for pname in stack.providers:
            try:
                usable[pname] = providers.get(pname)
            except MlformError as exc:
                diagnostics.extend(exc.diagnostics)
        evaluator = Evaluator(stack, variables, lambda _name: None)

        def provider_of(rname: str) -> Provider | None:
            return usable.get(stack.resources[rname].provider)

        diagnostics.extend(check_output_references(stack, provider_of))
        for name, spec in stack.resources.items():
            provider = usable.get(spec.provider)
            if provider is None:
                continue  # its provider's problem is reported above
            unrealised = unrealised_type(stack, name, provider)
            if unrealised:
                diagnostics.append(unrealised)
                continue
            refused, _notes = check_capabilities(stack, name, provider, provider_of)
            diagnostics.extend(refused)
            try:
                inputs = evaluator.inputs(name)
            except MlformError as exc:
                diagnostics.extend(exc.diagnostics)
                continue
            diagnostics.extend(unrepeated(check_inputs(stack, name, provider, inputs,
                                                       lambda _name: None), refused))
    finally:
        providers.close()
    if diagnostics:
        raise MlformError(*diagnostics)


def _upstream(raw_inputs: dict[str, Any], attributes: Attributes) -> dict[str, dict[str, Any]]:
    """For each top-level input written as `${other.attr}`, the other resource's attributes."""
    found = {}
    for key, raw in raw_inputs.items():
        if not is_whole_ref(raw):
            continue
        try:
            target = parse_ref(raw[2:-1])
        except RefSyntaxError:
            continue
        if target.is_var:
            continue
        attrs = attributes(target.root)
        if attrs is not None:
            found[key] = dict(attrs)
    return found

