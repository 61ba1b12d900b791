"""The stack reference, docs/reference/stack.md, rendered from the pydantic models.

Like specs/mlform.schema.json it is generated, so it cannot fall behind the code:
a test fails when the committed file differs from `render_reference()`.
Regenerate it with `python -m mlform.engine.spec.reference > docs/reference/stack.md`.
"""

from __future__ import annotations

import json
import typing
from typing import Any, Literal

from pydantic import BaseModel, ByteSize
from pydantic_core import PydanticUndefined

from . import models

INTRO = """\
# Stack reference

Every field of `mlform.yaml`, every resource type, and the attributes each type
exports to `${NAME.ATTR}` references. Generated from `engine/spec/models.py`;
do not edit by hand (regenerate: `python -m mlform.engine.spec.reference >
docs/reference/stack.md`). The same models produce the JSON Schema in
`specs/mlform.schema.json` (`mlform schema`), which editors can use to check a spec
as it is typed. See [concepts](../concepts.md) for what the fields mean together.

How to read the tables:

- **type**: `T or ${...}` means the value may be written directly or as one
  reference, whose value is checked against `T` at plan time; *duration* is a
  string such as `30s`, `5m`, `2h`, `1d`; *resource name* is the plain name of
  another resource in the stack (it adds a dependency edge).
- **default**: *required* when the field must be written; `null` when an absent
  value means "not set"; for an object, the defaults of its own fields.
"""


def render_reference() -> str:
    nested: list[type[BaseModel]] = []
    out = [INTRO]
    out += _section("The stack file", "`mlform.yaml` (and, without `stack` and `backend`, "
                    "every file pulled in by `include:`).", models.StackFile, nested)
    base_fields = set(models.ResourceBase.model_fields)
    out += _section("Fields of every resource", "Besides its own fields, every resource "
                    "takes these. `type` selects the resource type.", models.ResourceBase,
                    nested, skip={"type"})
    out.append("## Resource types\n")
    out.append(", ".join(f"[`{t}`](#{t})" for t in models.RESOURCE_TYPES)
               + "\n")
    for rtype, rmodel in models.RESOURCE_TYPES.items():
        out.append(f"### {rtype}\n")
        out.append(f"{_doc(rmodel)}\n")
        out += _fields_table(rmodel, nested, skip=base_fields)
        out.append(f"Attributes of `{rtype}`, for `${{NAME.ATTR}}` references:\n")
        out.append("| attribute | meaning |")
        out.append("|---|---|")
        out.append("| `id` | the provider's identifier of the resource |")
        for attr, meaning in models.RESOURCE_OUTPUTS.get(rtype, {}).items():
            out.append(f"| `{attr}` | {meaning} |")
        out.append("")
    out.append("## Objects\n")
    out.append("Values of the fields above that are themselves mappings.\n")
    done: set[type[BaseModel]] = set()
    while nested:  # rendering one object may name further objects
        model = nested.pop(0)
        if model in done:
            continue
        done.add(model)
        out.append(f"### {model.__name__} (object)\n")
        doc = _doc(model)
        if doc:
            out.append(f"{doc}\n")
        out += _fields_table(model, nested)
    return "\n".join(out).rstrip("\n") + "\n"


def _section(title: str, text: str, model: type[BaseModel], nested: list,
             skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    return [f"## {title}\n", f"{text}\n", *_fields_table(model, nested, skip)]


def _fields_table(model: type[BaseModel], nested: list,
                  skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        key = field.alias or name
        # rebuild_annotation: pydantic keeps a top-level Annotated's constraints apart.
        rows.append(f"| `{key}` | {_type(field.rebuild_annotation(), nested)} | "
                    f"{_default(field)} | {_describe(field)} |")
    if model.model_config.get("extra") == "allow":
        whose = "the provider's" if model is models.ProviderConfig else "the backend's"
        rows.append(f"| *other keys* | any | | {whose} own settings, passed to it as written |")
    return rows + [""]


def _type(annotation: Any, nested: list) -> str:
    for label, special in (("`${...}`", models.Expr), ("duration", models.Duration),
                           ("resource name", models.ResourceName),
                           ("size (bytes, or `64MiB`, `1GB`, ...)", ByteSize)):
        if annotation == special:
            return label
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        members = [a for a in args if a is not type(None)]
        if all(_is_resource(a) for a in members):
            return "[resource](#resource-types)"
        text = [_type(a, nested) for a in members]
        return " or ".join(dict.fromkeys(text))
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in args)
    if origin is list:
        return f"list of {_type(args[0], nested)}"
    if origin is dict:
        return f"map of {_type(args[1], nested)}"
    if origin is typing.Annotated:
        return _type(args[0], nested)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in nested:
            nested.append(annotation)
        return f"[{annotation.__name__}](#{annotation.__name__.lower()}-object)"
    if annotation is Any:
        return "any"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def _is_resource(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, models.ResourceBase)


def _default(field) -> str:
    if field.is_required():
        return "*required*"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(its defaults)"
        return f"`{json.dumps(value)}`"
    if field.default is PydanticUndefined:
        return ""
    return f"`{json.dumps(field.default)}`"


def _describe(field) -> str:
    text = field.description
    if not text:
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            text = _doc(annotation)
    return " ".join((text or "").split()).replace("|", "\\|")


def _doc(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    # pydantic gives undocumented models BaseModel's own docstring: not theirs to show.
    if doc == BaseModel.__doc__ or not model.__dict__.get("__doc__"):
        return ""
    return " ".join(doc.split())


if __name__ == "__main__":
    print(render_reference(), end="")
