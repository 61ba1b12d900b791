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
        for name, spec in stack.resources.items():
            provider = usable.get(spec.provider)
            if provider is None or spec.type not in provider.resource_types:
                continue  # its provider's problem is reported above, or plan reports the type
            try:
                inputs = evaluator.inputs(name)
            except MlformError as exc:
                diagnostics.extend(exc.diagnostics)
                continue
            diagnostics.extend(check_inputs(stack, name, provider, inputs, lambda _name: None))
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

