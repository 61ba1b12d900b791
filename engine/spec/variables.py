"""Input variables: where their values come from, in Terraform's order.

Precedence, highest first: `--var`, then `--var-file` files (later files win),
then `MLFORM_VAR_<NAME>` environment variables, then the declared default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
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
            # Without a name the text is a value, perhaps a secret: it is not echoed.
            shown = f" '{pair}'" if not sep else ""
            raise MlformError.simple(f"invalid --var{shown}: expected NAME=VALUE",
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
        if not path.is_file():
            looked = [str(Path(f).absolute())] + ([] if Path(f).is_absolute() or
                                                  base.absolute() == Path.cwd()
                                                  else [str((base / f).absolute())])
            what = "is not a file" if path.exists() else "not found"
            raise MlformError.simple(
                f"var file {what}: {f}", detail=f"looked at {' and '.join(looked)}",
                help="check the path given to --var-file: a relative path is read from the "
                     "current directory, then from the stack directory")
        try:
            data, pos = read_yaml(path, display=f)
        except MlformError as exc:
            # Var files hold secrets: report a syntax error by position, not by its line.
            raise MlformError(*(replace(d, show_source=False) for d in exc.diagnostics)) \
                from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise MlformError(Diagnostic(f"var file {f} must be a mapping of NAME: VALUE",
                                         location=pos.of(()), show_source=False,
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
            # The line holds the value, and a misspelt secret is still a secret.
            bag.add(Diagnostic(f"var file sets undeclared variable '{name}'",
                               location=file_locations.get(name), show_source=False,
                               help=hint or "declare it under 'variables:' in mlform.yaml"))
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
        except _Mismatch as exc:
            # Point at the faulty value where it was written, when that is a file.
            where = file_locations.get(name) if origin == "var file" else None
            got = "; the value is not shown because the variable is sensitive" \
                if decl.sensitive else f", got {exc.got}"
            bag.add(Diagnostic(f"variable '{name}' from {origin}: expected {exc.expected}{got}",
                               location=where or loc,
                               show_source=not decl.sensitive,
                               help=f"give a value of type {decl.type}"))
            continue
        values[name] = Secret(value) if decl.sensitive else value
    bag.raise_if_any()
    return values


class _Mismatch(ValueError):
    """A value of the wrong type: what was expected, and the value in words (for messages
    about variables that are not sensitive)."""

    def __init__(self, expected: str, got: str):
        super().__init__(f"expected {expected}, got {got}")
        self.expected = expected
        self.got = got


def _coerce(raw: Any, kind: str, from_text: bool) -> Any:
    if from_text and isinstance(raw, str) and kind in ("number", "integer", "bool", "list",
                                                         "map"):
        if kind == "bool":
            low = raw.strip().lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise _Mismatch("true or false", f"'{raw}'")
        try:
            raw = json.loads(raw)
        except ValueError:  # not JSON, or a number with more digits than Python reads
            raise _Mismatch(_WORDS[kind], _short(raw)) from None
    if kind == "string":
        if isinstance(raw, dict | list):
            raise _Mismatch("a string", type(raw).__name__)
        return str(raw)
    if kind == "number" and (isinstance(raw, bool) or not isinstance(raw, int | float)) or \
            kind == "integer" and (isinstance(raw, bool) or not isinstance(raw, int)) or \
            kind == "bool" and not isinstance(raw, bool) or \
            kind == "list" and not isinstance(raw, list) or \
            kind == "map" and not isinstance(raw, dict):
        raise _Mismatch(_WORDS[kind], _short(raw))
    return raw


_WORDS = {"number": "a number", "integer": "an integer", "bool": "true or false",
          "list": "a list", "map": "a mapping"}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
