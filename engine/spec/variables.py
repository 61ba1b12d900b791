"""Input variables: where their values come from, in Terraform's order.

Precedence, highest first: `--var`, then `--var-file` files (later files win),
then `MLFORM_VAR_<NAME>` environment variables, then the declared default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, DiagnosticBag, MlformError, did_you_mean
from ..values import Secret
from .models import Variable
from .source import Positions, read_yaml

ENV_PREFIX = "MLFORM_VAR_"


def parse_cli_vars(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise MlformError.simple(f"invalid --var '{pair}': expected NAME=VALUE",
                                     help="write --var min_auc=0.9")
        out[name.strip()] = value
    return out


def read_var_files(files: list[str], base: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Values from var files (YAML or JSON), and where each was set."""
    values: dict[str, Any] = {}
    where: dict[str, Any] = {}
    for f in files:
        path = Path(f)
        if not path.is_absolute() and not path.exists():
            path = base / f
        data, pos = read_yaml(path, display=f)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise MlformError(Diagnostic(f"var file {f} must be a mapping of NAME: VALUE",
                                         location=pos.of(()),
                                         help="write one 'name: value' per line"))
        for k, v in data.items():
            values[k] = v
            where[k] = pos.of((k,), key=True)
    return values, where


def resolve(declared: Mapping[str, Variable], positions: Positions, cli: dict[str, str],
            files: dict[str, Any], file_locations: dict[str, Any],
            environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The value of every declared variable; sensitive ones wrapped in `Secret`."""
    environ = os.environ if environ is None else environ
    bag = DiagnosticBag()
    for name in cli:
        if name not in declared:
            hint = did_you_mean(name, declared)
            bag.error(f"--var sets undeclared variable '{name}'",
                      help=hint or "declare it under 'variables:' in mlform.yaml")
    for name in files:
        if name not in declared:
            hint = did_you_mean(name, declared)
            bag.error(f"var file sets undeclared variable '{name}'",
                      location=file_locations.get(name),
                      help=hint or "declare it under 'variables:' in mlform.yaml")
    values: dict[str, Any] = {}
    for name, decl in declared.items():
        loc = positions.of(("variables", name), key=True)
        env_name = ENV_PREFIX + name
        if name in cli:
            raw, origin, from_text = cli[name], f"--var {name}", True
        elif name in files:
            raw, origin, from_text = files[name], "var file", False
        elif env_name in environ:
            raw, origin, from_text = environ[env_name], f"${env_name}", True
        elif decl.default is not None:
            raw, origin, from_text = decl.default, "default", False
        else:
            bag.error(f"no value for required variable '{name}'", location=loc,
                      help=f"set it with --var {name}=VALUE, in a --var-file, or in the "
                           f"environment as {env_name}")
            continue
        try:
            value = _coerce(raw, decl.type, from_text)
        except ValueError as exc:
            # Point at the faulty value where it was written, when that is a file.
            where = file_locations.get(name) if origin == "var file" else None
            bag.error(f"variable '{name}' from {origin}: {exc}", location=where or loc,
                      help=f"give a value of type {decl.type}")
            continue
        values[name] = Secret(value) if decl.sensitive else value
    bag.raise_if_any()
    return values


def _coerce(raw: Any, kind: str, from_text: bool) -> Any:
    if from_text and isinstance(raw, str) and kind in ("number", "integer", "bool", "list",
                                                         "map"):
        if kind == "bool":
            low = raw.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError(f"expected true or false, got '{raw}'")
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(f"expected a {kind}, got '{raw}'") from None
    if kind == "string":
        if isinstance(raw, dict | list):
            raise ValueError(f"expected a string, got {type(raw).__name__}")
        return str(raw)
    if kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"expected a number, got {raw!r}")
        return raw
    if kind == "integer":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"expected an integer, got {raw!r}")
        return raw
    if kind == "bool":
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false, got {raw!r}")
        return raw
    if kind == "list" and not isinstance(raw, list):
        raise ValueError(f"expected a list, got {raw!r}")
    if kind == "map" and not isinstance(raw, dict):
        raise ValueError(f"expected a mapping, got {raw!r}")
    return raw
