"""Where policies come from, gathered into one checked set of rules.

In order: the shipped defaults the sources enable, the stack's `policies:`, the files
it lists, the files given by `--policy`, and those `MLFORM_POLICY_PATH` names (an
organisation's, `os.pathsep`-separated files or folders). Parameters merge in the same
order, a later source's value winning: an organisation's file has the last word.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, DiagnosticBag, Location, MlformError, did_you_mean
from ..spec.source import Positions, parse_yaml, read_yaml

ENV = "MLFORM_POLICY_PATH"


@dataclass(frozen=True)
class Rule:
    """A rule as it will be checked: its fields and where each was written."""

    name: str
    description: str
    severity: str
    resource_types: tuple[str, ...]
    condition: str
    message: str
    source: str
    """The file it comes from (`mlform:default-policies.yaml` for a shipped default)."""
    location: Location | None
    condition_location: Location | None


@dataclass
class PolicySet:
    rules: list[Rule] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


@dataclass
class _Source:
    name: str
    data: dict
    positions: Positions
    prefix: tuple
    base: Path
    """Folder its `files:` are relative to."""


def gather(stack, extra: tuple[Path, ...] = ()) -> PolicySet | None:
    """The rules a plan of `stack` is checked against; None when there are none."""
    from ..spec.models import Policies

    bag = DiagnosticBag()
    sources: list[_Source] = []
    stack_policies = (getattr(stack, "raw_policies", None) or
                      stack.file.policies.model_dump(mode="json", exclude_defaults=True))
    spec_file = str(stack.files[0]) if stack.files else "mlform.yaml"
    if stack_policies:
        sources.append(_Source(spec_file, stack_policies, stack.positions, ("policies",),
                               stack.dir))
    for path in _listed(stack_policies.get("files", []), stack.dir, bag,
                        lambda i: stack.positions.of(("policies", "files", i))):
        sources += _file_sources(path, bag, seen={s.name for s in sources})
    env_paths = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    for origin, paths in (("--policy", list(extra)), (ENV, env_paths)):
        for p in paths:
            if not p.exists():
                bag.error(f"policy path '{p}' (from {origin}) does not exist",
                          help="give a policy file (YAML) or a folder of them")
                continue
            for path in _expand(p):
                sources += _file_sources(path, bag, seen={s.name for s in sources})
    bag.raise_if_any()
    for src in sources:
        from ..spec.validation import validate

        _, diags = validate(Policies, src.data, src.positions, src.prefix)
        for d in diags:
            bag.add(d)
    bag.raise_if_any()
    if not sources:
        return None
    return _assemble(sources, bag)


def _listed(files: list[str], base: Path, bag: DiagnosticBag, where) -> list[Path]:
    out = []
    for i, f in enumerate(files):
        path = base / f
        if not path.exists():
            bag.error(f"policy file not found: '{f}'", location=where(i),
                      help="paths in 'policies.files' are relative to the file that lists them")
            continue
        out += _expand(path)
    return out


def _expand(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    return [path]


def _file_sources(path: Path, bag: DiagnosticBag, seen: set[str]) -> list[_Source]:
    """A policy file and the files it lists, each once."""
    name = _display(path)
    if name in seen:
        return []
    try:
        data, positions = read_yaml(path, name)
    except MlformError as exc:
        for d in exc.diagnostics:
            bag.add(d)
        return []
    if data is None:
        return []
    if not isinstance(data, dict):
        bag.error(f"{name} must be a mapping with 'rules' (and 'enable', 'params', 'files')",
                  location=positions.of(()), help="see docs/policies.md")
        return []
    out = [_Source(name, data, positions, (), path.parent)]
    seen = seen | {name}
    files = data.get("files") or []
    if isinstance(files, list):
        for sub in _listed([f for f in files if isinstance(f, str)], path.parent, bag,
                           lambda i: positions.of(("files", i))):
            found = _file_sources(sub, bag, seen)
            seen |= {s.name for s in found}
            out += found
    return out


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _assemble(sources: list[_Source], bag: DiagnosticBag) -> PolicySet:
    from .defaults import PARAMS, SOURCE, TEXT

    defaults_data, defaults_pos = parse_yaml(TEXT, SOURCE)
    defaults = {r["name"]: _rule(r, i, SOURCE, defaults_pos, ("rules",))
                for i, r in enumerate(defaults_data["rules"])}
    out = PolicySet(params=dict(PARAMS), sources=[s.name for s in sources])
    enabled: dict[str, Rule] = {}
    where: dict[str, Location | None] = {}
    for src in sources:
        out.params.update(src.data.get("params") or {})
        for i, entry in enumerate(src.data.get("enable") or []):
            name = entry if isinstance(entry, str) else entry.get("name")
            loc = src.positions.of(src.prefix + ("enable", i))
            if name not in defaults:
                hint = did_you_mean(name, defaults)
                bag.error(f"no default policy named '{name}'", location=loc,
                          help=hint or f"default policies: {', '.join(defaults)}")
                continue
            rule = defaults[name]
            severity = entry.get("severity") if isinstance(entry, dict) else None
            if severity:
                from dataclasses import replace

                rule = replace(rule, severity=severity)
            enabled[name] = rule
    for name, rule in enabled.items():
        out.rules.append(rule)
        where[name] = rule.location
    for src in sources:
        for i, raw in enumerate(src.data.get("rules") or []):
            rule = _rule(raw, i, src.name, src.positions, src.prefix + ("rules",))
            if rule.name in where:
                first = where[rule.name]
                bag.add(Diagnostic(f"policy '{rule.name}' is defined twice",
                                   location=rule.location,
                                   detail=f"first defined at {first or 'the defaults'}",
                                   help="rename one of them"))
                continue
            where[rule.name] = rule.location
            out.rules.append(rule)
    _check_types(out.rules, bag)
    bag.raise_if_any()
    return out


def _rule(raw: dict, i: int, source: str, positions: Positions, prefix: tuple) -> Rule:
    at = prefix + (i,)
    return Rule(name=raw["name"], description=raw.get("description", ""),
                severity=raw.get("severity", "mandatory"),
                resource_types=tuple(raw.get("resource_types") or ()),
                condition=raw["condition"], message=raw["message"], source=source,
                location=positions.of(at + ("name",)),
                condition_location=positions.of(at + ("condition",)))


def _check_types(rules: list[Rule], bag: DiagnosticBag) -> None:
    from ..spec.models import RESOURCE_TYPES

    for rule in rules:
        for rtype in rule.resource_types:
            if rtype not in RESOURCE_TYPES:
                hint = did_you_mean(rtype, RESOURCE_TYPES)
                bag.error(f"policy '{rule.name}': unknown resource type '{rtype}'",
                          location=rule.location,
                          help=hint or f"resource types: {', '.join(RESOURCE_TYPES)}")
