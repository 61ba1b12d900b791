"""CEL rules compiled and checked before any is evaluated: a syntax error, an unknown
name, field, parameter or function is reported at its place in the rule's file, with
what would be right. Evaluation errors become diagnostics too, never tracebacks.

`cel-python` is imported here only, and only when a stack has policies.
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import Diagnostic, Location, did_you_mean
from .sources import Rule

ROOTS = ("resource", "change", "plan", "params", "labels")
TYPE_NAMES = {"int", "uint", "double", "bool", "string", "bytes", "list", "map",
              "null_type", "type", "duration", "timestamp"}
MACROS = {"has", "all", "exists", "exists_one", "map", "filter"}
BINDING_MACROS = {"all", "exists", "exists_one", "map", "filter"}
EXTRA_FIELDS = ("name", "type", "provider", "provider_type", "action", "location",
                "dependencies")
"""What the document adds to each resource beside its spec fields."""
CHANGE_FIELDS = ("action", "before", "after", "attributes", "replace_paths", "reasons")
PLAN_FIELDS = ("stack", "destroy", "targets", "labels", "summary", "resources", "changes")

WRAPPERS = {"expr", "conditionalor", "conditionaland", "relation", "addition",
            "multiplication", "unary", "member", "primary"}
"""Grammar rules that wrap a lone operand (a bare name is five levels down)."""

_ANY: dict = {}


class Compiled:
    """A rule's program, ready to evaluate."""

    def __init__(self, rule: Rule, program: Any):
        self.rule = rule
        self.program = program


def compile_rules(rules: list[Rule], params: dict[str, Any]
                  ) -> tuple[list[Compiled], list[Diagnostic]]:
    import celpy
    from celpy.celparser import CELParseError

    env = celpy.Environment()
    out, problems = [], []
    functions = _functions()
    for rule in rules:
        try:
            tree = env.compile(rule.condition)
        except CELParseError as exc:
            line, col = getattr(exc, "line", None) or 1, getattr(exc, "column", None) or 1
            problems.append(Diagnostic(
                f"policy '{rule.name}': the condition is not valid CEL",
                location=_at(rule, line, col),
                detail=str(exc.args[0] if exc.args else exc).rstrip(),
                help="see https://github.com/google/cel-spec/blob/master/doc/langdef.md"))
            continue
        found = _check(tree, rule, params, functions)
        if found:
            problems += found
            continue
        out.append(Compiled(rule, env.program(tree)))
    return out, problems


def evaluate(compiled: Compiled, activation: dict[str, Any]) -> tuple[bool | None, str]:
    """(passed, '') or (None, why it could not be evaluated)."""
    import celpy

    try:
        value = compiled.program.evaluate(activation)
    except celpy.CELEvalError as exc:
        return None, _eval_message(exc)
    if isinstance(value, celpy.CELEvalError):
        return None, _eval_message(value)
    if not isinstance(value, celpy.celtypes.BoolType | bool):
        return None, f"the condition gave {type(value).__name__.replace('Type', '').lower()} " \
                     f"{value}, not true or false"
    return bool(value), ""


def to_cel(value: Any) -> Any:
    import celpy

    return celpy.json_to_cel(value)


def _eval_message(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.replace("Token('RULE', ", "(").strip()


def _functions() -> set[str]:
    import celpy.evaluation

    return {n for n in celpy.evaluation.base_functions if n[:1].isalpha()} | MACROS


def _at(rule: Rule, line: int, col: int, length: int = 1) -> Location | None:
    """Where (line, col) of the condition is in the rule's file."""
    from ..spec.source import _source_line_text

    loc = rule.condition_location
    if loc is None:
        return None
    text = _source_line_text(loc.file, loc.line)
    head = text[loc.column - 1:loc.column] if text else ""
    if head and head in "|>":  # a block scalar: its text starts on the next line
        target = _source_line_text(loc.file, loc.line + line)
        indent = len(target) - len(target.lstrip())
        return Location(loc.file, loc.line + line, indent + col, length)
    if line == 1:
        return Location(loc.file, loc.line, loc.column + col - 1 + (head in "\"'"), length)
    return Location(loc.file, loc.line + line - 1, col, length)


# --- the static check -------------------------------------------------------------

class _Schema:
    """Candidate JSON schemas a name may have (a rule on several types: any of theirs)."""

    def __init__(self, options: list[tuple[dict, dict]], label: str):
        self.options = options
        self.label = label

    def field(self, name: str) -> _Schema | None:
        found = []
        for schema, defs in self.options:
            sub = _field(schema, name, defs)
            if sub is not None:
                found.append((sub, defs))
        return _Schema(found, f"{self.label}.{name}") if found else None

    def items(self) -> _Schema:
        found = []
        for schema, defs in self.options:
            for opt in _branches(schema, defs):
                if opt.get("type") == "array":
                    found.append((opt.get("items", _ANY), defs))
        return _Schema(found or [(_ANY, {})], f"{self.label}[]")

    def names(self) -> list[str]:
        out: list[str] = []
        for schema, defs in self.options:
            for opt in _branches(schema, defs):
                out += list(opt.get("properties", {}))
        return list(dict.fromkeys(out))


def _resolve(schema: dict, defs: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = defs.get(schema["$ref"].split("/")[-1], _ANY)
    return schema


def _branches(schema: dict, defs: dict) -> list[dict]:
    schema = _resolve(schema, defs)
    options = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf") or [schema]
    return [_resolve(o, defs) for o in options]


def _field(schema: dict, name: str, defs: dict) -> dict | None:
    for opt in _branches(schema, defs):
        if opt.get("type") is None and not {"properties", "const", "enum"} & set(opt):
            return _ANY  # Any: whatever is there
        if opt.get("type") == "object" or "properties" in opt:
            props = opt.get("properties", {})
            if name in props:
                return props[name]
            extra = opt.get("additionalProperties", "properties" not in opt)
            if extra is True:
                return _ANY
            if isinstance(extra, dict):
                return extra
    return None


def _object(fields: tuple[str, ...] | list[str]) -> dict:
    return {"type": "object", "properties": {f: _ANY for f in fields},
            "additionalProperties": False}


def _roots(rule: Rule, params: dict[str, Any]) -> dict[str, _Schema]:
    from ..spec.models import RESOURCE_TYPES

    types = rule.resource_types or tuple(RESOURCE_TYPES)
    options = []
    for rtype in types:
        schema = RESOURCE_TYPES[rtype].model_json_schema()
        defs = schema.get("$defs", {})
        schema = {**schema, "properties": {**schema.get("properties", {}),
                                           **{f: _ANY for f in EXTRA_FIELDS}}}
        options.append((schema, defs))
    what = " or ".join(types) if rule.resource_types else "a resource"
    return {"resource": _Schema(options, what),
            "change": _Schema([(_object(CHANGE_FIELDS), {})], "change"),
            "plan": _Schema([(_object(PLAN_FIELDS), {})], "plan"),
            "params": _Schema([(_object(list(params)), {})], "params"),
            "labels": _Schema([({"type": "array", "items": {"type": "string"}}, {})],
                              "labels")}


def _check(tree: Any, rule: Rule, params: dict[str, Any],
           functions: set[str]) -> list[Diagnostic]:
    from lark import Token, Tree

    roots = _roots(rule, params)
    bound: dict[str, _Schema] = {}
    problems: list[Diagnostic] = []

    def report(token: Any, summary: str, help: str) -> None:
        loc = _at(rule, token.line, token.column, len(str(token)))
        problems.append(Diagnostic(f"policy '{rule.name}': {summary}", location=loc,
                                   help=help))

    def chain(node: Any) -> tuple[Any, list[Any]] | None:
        if not isinstance(node, Tree):
            return None
        if node.data == "member_dot":
            inner = chain(node.children[0])
            return None if inner is None else (inner[0], inner[1] + [node.children[1]])
        if node.data in WRAPPERS and len(node.children) == 1:
            return chain(node.children[0])
        if node.data == "ident" and isinstance(node.children[0], Token):
            return node.children[0], []
        return None

    def schema_of(found: tuple[Any, list[Any]], complain: bool) -> _Schema | None:
        root, fields = found
        name = str(root)
        schema = bound.get(name) or roots.get(name)
        if schema is None:
            if name not in TYPE_NAMES and complain:
                hint = did_you_mean(name, list(roots) + list(bound))
                report(root, f"unknown name '{name}'",
                       hint or f"a rule reads {', '.join(ROOTS)}")
            return None
        for token in fields:
            sub = schema.field(str(token))
            if sub is None:
                if complain:
                    if name == "params" and schema.label == "params":
                        report(token, f"no parameter '{token}'",
                               did_you_mean(str(token), params) or
                               f"declare it under policies.params (declared: "
                               f"{', '.join(params) or 'none'})")
                    else:
                        report(token, f"{schema.label} has no field '{token}'",
                               did_you_mean(str(token), schema.names()) or
                               f"fields: {', '.join(schema.names()) or 'none'}")
                return None
            schema = sub
        return schema

    checked: set[int] = set()
    for node in tree.iter_subtrees_topdown():
        if node.data == "member_dot_arg":
            method = str(node.children[1])
            if method not in functions:
                report(node.children[1], f"unknown function '{method}'",
                       did_you_mean(method, functions) or "see docs/policies.md for the "
                                                          "functions a rule may call")
            args = node.children[2].children if len(node.children) > 2 and \
                isinstance(node.children[2], Tree) else []
            target = chain(node.children[0])
            if method in BINDING_MACROS and args:
                var = chain(args[0])
                if var is not None and not var[1]:
                    schema = schema_of(target, False) if target else None
                    bound[str(var[0])] = schema.items() if schema else \
                        _Schema([(_ANY, {})], str(var[0]))
                    checked.add(id(args[0]))
        elif node.data == "ident_arg":
            name = str(node.children[0])
            if name not in functions:
                report(node.children[0], f"unknown function '{name}'",
                       did_you_mean(name, functions) or "see docs/policies.md for the "
                                                        "functions a rule may call")
        elif node.data in ("member_dot", "ident") and id(node) not in checked:
            found = chain(node)
            if found is not None:
                schema_of(found, True)
                for sub in node.iter_subtrees():
                    checked.add(id(sub))
    unique = list(dict.fromkeys(problems))
    return unique
