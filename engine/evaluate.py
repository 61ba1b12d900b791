"""Evaluating a resource's inputs: variables and other resources' attributes substituted.

What a reference yields depends on the moment: during a plan, an attribute of a
resource that will change is its planned value or `Unknown`; during an apply it
is the value the provider just returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .diagnostics import Diagnostic, MlformError
from .spec.loader import Stack
from .spec.refs import Ref, substitute
from .values import Secret, StoredSecret, Unknown

AttributeLookup = Callable[[str], Mapping[str, Any] | None]
"""Resource name -> its attributes now (outputs, plus `id`), or None if it has none yet."""


class Evaluator:
    def __init__(self, stack: Stack, variables: Mapping[str, Any], attributes: AttributeLookup):
        self.stack = stack
        self.variables = variables
        self.attributes = attributes

    def resolve_ref(self, ref: Ref, where: tuple = ()) -> Any:
        if ref.is_var:
            value = self.variables[ref.path[0]]
            return _walk(value, ref.path[1:], ref, self.stack, where)
        attrs = self.attributes(ref.root)
        if attrs is None:
            return Unknown(str(ref))
        if ref.path[0] not in attrs:
            raise MlformError(Diagnostic(
                f"'{ref.root}' has no value for '{ref.path[0]}'",
                location=self.stack.location(where),
                detail=f"known attributes: {', '.join(sorted(attrs)) or 'none'}",
                help="check the attribute name, or run 'mlform refresh' if the resource "
                     "was changed outside mlform"))
        return _walk(attrs[ref.path[0]], ref.path[1:], ref, self.stack, where)

    def inputs(self, name: str) -> dict[str, Any]:
        spec = self.stack.resources[name]
        inputs = self._substitute(spec.inputs, ("resources", name))
        if spec.type == "gateway":
            from .gateway_backends import with_backends

            return with_backends(self, name, inputs)
        return inputs

    def outputs(self) -> dict[str, Any]:
        out = {}
        for oname, expr in self.stack.outputs.items():
            value = self._substitute(expr, ("outputs", oname, "value"))
            if self.stack.file.outputs[oname].sensitive and not isinstance(value, Unknown):
                value = Secret(value)
            out[oname] = value
        return out

    def _substitute(self, value: Any, base: tuple) -> Any:
        # Walk ourselves so that each reference knows where it was written.
        if isinstance(value, dict):
            return {k: self._substitute(v, base + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v, base + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return substitute(value, lambda ref: self.resolve_ref(ref, base))
        return value


def _walk(value: Any, path: tuple[str, ...], ref: Ref, stack: Stack, where: tuple) -> Any:
    for seg in path:
        if isinstance(value, Unknown):
            return Unknown(str(ref))
        if isinstance(value, Secret):
            return Secret(_walk(value.reveal(), (seg,), ref, stack, where))
        if isinstance(value, StoredSecret):
            return Unknown(str(ref))
        if isinstance(value, dict) and seg in value:
            value = value[seg]
        elif isinstance(value, list) and seg.isdigit() and int(seg) < len(value):
            value = value[int(seg)]
        else:
            raise MlformError(Diagnostic(
                f"'{ref}' cannot be resolved: no '{seg}' in the value",
                location=stack.location(where),
                help="check the attribute path"))
    return value
