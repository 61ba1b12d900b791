"""Load a stack directory into a checked `Stack`: files, includes, schema, references.

Everything wrong with the spec is collected and raised together as one
`MlformError`, each diagnostic at its file:line:col.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, DiagnosticBag, MlformError, did_you_mean
from .models import RESOURCE_OUTPUTS, IncludedFile, ResourceBase, StackFile, Variable
from .refs import RefSyntaxError, walk_refs
from .source import Positions, read_yaml
from .validation import validate

SPEC_FILE = "mlform.yaml"
META_FIELDS = ("type", "provider", "depends_on", "lifecycle")
"""Resource fields the engine consumes; the rest are the provider's inputs."""


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    type: str
    config: dict[str, Any]


@dataclass
class ResourceSpec:
    """One resource as written: its validated model, raw inputs and dependencies."""

    name: str
    type: str
    provider: str
    model: ResourceBase
    inputs: dict[str, Any]
    """Provider inputs, still holding `${...}` expressions (defaults filled in)."""
    dependencies: list[str]


@dataclass
class Stack:
    dir: Path
    name: str
    file: StackFile
    resources: dict[str, ResourceSpec]
    providers: dict[str, ProviderSpec]
    variables: dict[str, Variable]
    outputs: dict[str, Any]
    positions: Positions
    files: list[Path] = field(default_factory=list)
    digest: str = ""

    def location(self, path: tuple, key: bool = False):
        return self.positions.of(path, key=key)


def load_stack(directory: str | Path = ".") -> Stack:
    root = Path(directory)
    spec_path = root / SPEC_FILE
    if not root.is_dir():
        raise MlformError.simple(f"stack directory not found: {root}",
                                 help="pass an existing directory, or run 'mlform init DIR'")
    if not spec_path.exists():
        raise MlformError.simple(f"no {SPEC_FILE} in {root}",
                                 help=f"run 'mlform init {root}' to create a stack, or pass "
                                      "the stack directory as an argument")
    display = _display(spec_path)
    data, positions = read_yaml(spec_path, display)
    if not isinstance(data, dict):
        raise MlformError(Diagnostic(f"{display} must be a mapping with 'version', 'stack' and "
                                     "'resources'", location=positions.of(()),
                                     help="see 'mlform init' for a working example"))
    digest = hashlib.sha256(spec_path.read_bytes())
    files = [spec_path]
    bag = DiagnosticBag()
    _merge_includes(root, data, positions, bag, files, digest)
    stack_file, diags = validate(StackFile, data, positions)
    for d in diags:
        bag.add(d)
    if stack_file is None:
        bag.raise_if_any()
    assert isinstance(stack_file, StackFile)
    providers = _providers(stack_file, positions, bag)
    resources = {}
    for name, model in stack_file.resources.items():
        raw = data["resources"][name]
        resources[name] = _resource(name, model, raw, providers, positions, bag)
    _check_references(stack_file, data, resources, positions, bag)
    bag.raise_if_any()
    _check_cycles(resources, positions)
    return Stack(dir=root.resolve(), name=stack_file.stack, file=stack_file,
                 resources=resources, providers=providers,
                 variables=dict(stack_file.variables),
                 outputs={k: v.value for k, v in stack_file.outputs.items()},
                 positions=positions, files=files, digest=digest.hexdigest())


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _merge_includes(root: Path, data: dict, positions: Positions, bag: DiagnosticBag,
                    files: list[Path], digest) -> None:
    includes = data.get("include") or []
    if not isinstance(includes, list):
        return  # the schema reports it
    for i, inc in enumerate(includes):
        if not isinstance(inc, str):
            continue
        path = root / inc
        loc = positions.of(("include", i))
        if not path.exists():
            bag.error(f"included file not found: '{inc}'", location=loc,
                      help="paths in 'include:' are relative to the stack directory")
            continue
        files.append(path)
        digest.update(path.read_bytes())
        try:
            sub, sub_pos = read_yaml(path, _display(path))
        except MlformError as exc:
            for d in exc.diagnostics:
                bag.add(d)
            continue
        if sub is None:
            continue
        model, diags = validate(IncludedFile, sub, sub_pos)
        for d in diags:
            bag.add(d)
        if model is None:
            continue
        for section in ("providers", "variables", "resources", "outputs"):
            for key, value in (sub.get(section) or {}).items():
                target = data.setdefault(section, {})
                if target is None:
                    target = data[section] = {}
                if key in target:
                    first = positions.of((section, key), key=True)
                    bag.error(f"'{key}' is defined twice in '{section}'",
                              location=sub_pos.of((section, key), key=True),
                              detail=f"first defined at {first}",
                              help="rename one of them")
                    continue
                target[key] = value
                for p, loc2 in sub_pos.values.items():
                    if p[:2] == (section, key):
                        positions.values[p] = loc2
                for p, loc2 in sub_pos.keys.items():
                    if p[:2] == (section, key):
                        positions.keys[p] = loc2


def _providers(stack: StackFile, positions: Positions, bag: DiagnosticBag) -> dict:
    out = {}
    for name, cfg in stack.providers.items():
        config = cfg.model_dump(exclude={"type"}) if cfg else {}
        ptype = (cfg.type if cfg and cfg.type else name)
        out[name] = ProviderSpec(name=name, type=ptype, config=config)
    return out


def _resource(name: str, model: ResourceBase, raw: dict, providers: dict, positions: Positions,
              bag: DiagnosticBag) -> ResourceSpec:
    provider = model.provider
    if provider is None:
        if len(providers) == 1:
            provider = next(iter(providers))
        elif "local" in providers:
            provider = "local"
        else:
            bag.error(f"resource '{name}' names no provider and the stack has several",
                      location=positions.of(("resources", name), key=True),
                      help=f"add 'provider: NAME' with one of: {', '.join(providers)}")
            provider = ""
    elif provider not in providers:
        hint = did_you_mean(provider, providers)
        bag.error(f"unknown provider '{provider}'",
                  location=positions.of(("resources", name, "provider")),
                  help=hint or f"declare it under 'providers:' (declared: "
                               f"{', '.join(providers) or 'none'})")
    inputs = model.model_dump(mode="json", exclude=set(META_FIELDS), exclude_defaults=True)
    # Keep expressions exactly as written; model_dump already preserves them as strings.
    deps = list(dict.fromkeys([n for _, n in model.named_resources()]))
    return ResourceSpec(name=name, type=model.type, provider=provider, model=model,
                        inputs=inputs, dependencies=deps)


def _check_references(stack: StackFile, data: dict, resources: dict, positions: Positions,
                      bag: DiagnosticBag) -> None:
    declared_vars = stack.variables

    def check(value: Any, path: tuple, owner: str | None) -> None:
        try:
            found = list(walk_refs(value, path))
        except RefSyntaxError as exc:
            bag.error(str(exc), location=positions.of(path),
                      help="write a reference as ${resource.attribute} or ${var.name}")
            return
        for where, ref in found:
            loc = positions.of(where)
            if loc is not None:
                from dataclasses import replace

                src_col = loc.column + ref.offset + (1 if _quoted(loc) else 0)
                loc = replace(loc, column=src_col, length=len(str(ref)))
            if ref.is_var:
                if ref.path[0] not in declared_vars:
                    hint = did_you_mean(ref.path[0], declared_vars)
                    bag.error(f"reference to undeclared variable 'var.{ref.path[0]}'",
                              location=loc, help=hint or f"declare it under 'variables:' as "
                                                        f"'{ref.path[0]}: {{type: string}}'")
                continue
            if ref.root not in resources:
                hint = did_you_mean(ref.root, resources)
                bag.error(f"reference to unknown resource '{ref.root}' in '{ref}'", location=loc,
                          help=hint or f"resources in this stack: {', '.join(resources)}")
                continue
            target = resources[ref.root]
            attrs = RESOURCE_OUTPUTS.get(target.type, {})
            attr = ref.path[0]
            if attr != "id" and attr not in attrs:
                hint = did_you_mean(attr, list(attrs) + ["id"])
                bag.error(f"{target.type} '{ref.root}' has no attribute '{attr}'",
                          location=loc,
                          help=(hint + " " if hint else "") +
                               f"attributes of a {target.type}: id, {', '.join(attrs)}")
                continue
            if owner is not None:
                if ref.root == owner:
                    bag.error(f"resource '{owner}' refers to itself in '{ref}'", location=loc,
                              help="a resource cannot use its own attributes")
                    continue
                deps = resources[owner].dependencies
                if ref.root not in deps:
                    deps.append(ref.root)

    for name, spec in resources.items():
        raw = data["resources"][name]
        for key, value in raw.items():
            if key in ("type", "depends_on", "lifecycle"):
                continue
            check(value, ("resources", name, key), name)
        for path, dep in spec.model.named_resources():
            if dep not in resources:
                hint = did_you_mean(dep, resources)
                bag.error(f"unknown resource '{dep}'",
                          location=positions.of(("resources", name) + path),
                          help=hint or f"resources in this stack: {', '.join(resources)}")
            elif dep == name:
                bag.error(f"resource '{name}' depends on itself",
                          location=positions.of(("resources", name) + path),
                          help="remove it from depends_on")
        spec.dependencies[:] = [d for d in spec.dependencies if d in resources and d != name]
    for oname, out in (data.get("outputs") or {}).items():
        if isinstance(out, dict):
            check(out.get("value"), ("outputs", oname, "value"), None)
    for vname, var in (data.get("variables") or {}).items():
        if isinstance(var, dict) and "default" in var:
            try:
                refs = list(walk_refs(var["default"]))
            except RefSyntaxError:
                refs = []
            if refs:
                bag.error(f"variable '{vname}' has a reference in its default",
                          location=positions.of(("variables", vname, "default")),
                          help="a variable's default must be a plain value")


def _quoted(loc) -> bool:
    from .source import _source_line_text

    line = _source_line_text(loc.file, loc.line)
    return bool(line) and len(line) >= loc.column and line[loc.column - 1] in "\"'"


def _check_cycles(resources: dict[str, ResourceSpec], positions: Positions) -> None:
    from ..graph import CycleError, Graph

    graph = Graph({n: r.dependencies for n, r in resources.items()})
    try:
        graph.check_acyclic()
    except CycleError as exc:
        members = exc.cycle
        chain = " -> ".join(members + [members[0]])
        raise MlformError(Diagnostic(
            f"dependency cycle: {chain}",
            location=positions.of(("resources", members[0]), key=True),
            detail="\n".join(f"'{m}' is at {positions.of(('resources', m), key=True)}"
                             for m in members),
            help="remove one of these references or depends_on entries")) from None
