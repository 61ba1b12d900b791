"""Reading YAML so that every value keeps its file, line and column.

ruamel.yaml's round-trip loader records positions on each mapping and sequence;
we copy them into a flat `Positions` table keyed by the value's path, and hand
the rest of the engine plain dicts and lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, Location, MlformError

PathKey = tuple[str | int, ...]


@dataclass
class Positions:
    """Where each value (and each mapping key) was written."""

    values: dict[PathKey, Location] = field(default_factory=dict)
    keys: dict[PathKey, Location] = field(default_factory=dict)

    def of(self, path: PathKey, key: bool = False) -> Location | None:
        """The location of `path`, or of the nearest enclosing value that has one."""
        table = self.keys if key else self.values
        path = tuple(path)
        while path:
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), None)

    def update(self, other: Positions, prefix: PathKey = ()) -> None:
        for k, v in other.values.items():
            self.values[prefix + k] = v
        for k, v in other.keys.items():
            self.keys[prefix + k] = v


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def parse_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse YAML text into plain data plus the position of every value."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        doc = _yaml().load(text)
    except MarkedYAMLError as exc:
        raise MlformError(_yaml_error(exc, text, file)) from None
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors in practice
        raise MlformError.simple(f"cannot parse {file}: {exc}",
                                 help="check the YAML syntax") from None
    positions = Positions()
    data = _plain(doc, (), file, positions)
    positions.values.setdefault((), Location(file, 1, 1))
    return data, positions


def read_yaml(path: Path, display: str | None = None) -> tuple[Any, Positions]:
    display = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MlformError.simple(f"file not found: {display}",
                                 help="run 'mlform init' to create a stack here, or pass the "
                                      "stack directory as an argument") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MlformError.simple(f"cannot read {display}: {exc}",
                                 help="the spec must be a UTF-8 text file") from None
    return parse_yaml(text, display)


def _plain(node: Any, path: PathKey, file: str, pos: Positions) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            # YAML reads a bare `null:` or `true:` key as a value; a name was meant.
            name = _key_name(key)
            kpath = path + (name,)
            try:
                kl, kc = node.lc.key(key)
                pos.keys[kpath] = Location(file, kl + 1, kc + 1, len(name))
                vl, vc = node.lc.value(key)
                value = node[key]
                length = len(str(value)) if isinstance(value, str | int | float) else 1
                pos.values[kpath] = Location(file, vl + 1, vc + 1, length)
            except (KeyError, TypeError, AttributeError):
                pass
            out[name] = _plain(node[key], kpath, file, pos)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, item in enumerate(node):
            ipath = path + (i,)
            try:
                il, ic = node.lc.item(i)
                length = len(str(item)) if isinstance(item, str | int | float) else 1
                pos.values[ipath] = Location(file, il + 1, ic + 1, length)
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_plain(item, ipath, file, pos))
        return items
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _key_name(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _yaml_error(exc, text: str, file: str) -> Diagnostic:
    lines = text.splitlines()
    mark = exc.problem_mark or exc.context_mark
    if mark and mark.line >= len(lines) and exc.context_mark:
        # "got '<stream end>'" is past the last line; the unclosed bracket is the place to fix.
        mark = exc.context_mark
    line = (mark.line + 1) if mark else 1
    col = (mark.column + 1) if mark else 1
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    if mark is exc.context_mark and exc.context and exc.problem:
        problem = f"{exc.context.strip()}: {problem}"
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    help_ = "fix the YAML syntax at the marked position"
    context_line = lines[exc.context_mark.line] if exc.context_mark and \
        exc.context_mark.line < len(lines) else ""
    if "${" in src or "${" in context_line:
        help_ = ("a '${...}' reference inside YAML flow style ({...} or [...]) must be quoted, "
                 "e.g. {model: \"${m.uri}\"}, or written in block style")
    elif "found duplicate key" in problem or "duplicate key" in str(exc):
        help_ = "each key may appear once in a mapping: remove or rename the repeated one"
    elif "\t" in src:
        help_ = "YAML does not allow tabs for indentation: use spaces"
    return Diagnostic(f"invalid YAML: {problem}", location=Location(file, line, col), help=help_)


_LINES: dict[str, tuple[float, list[str]]] = {}


def _source_line_text(file: str, line: int) -> str:
    """One line of a spec file, for adjusting columns inside quoted strings.

    Cached per file and modification time: `watch` runs for days while specs change.
    """
    try:
        mtime = Path(file).stat().st_mtime
    except OSError:
        return ""
    cached = _LINES.get(file)
    if cached is None or cached[0] != mtime:
        try:
            cached = (mtime, Path(file).read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError):
            cached = (mtime, [])
        _LINES[file] = cached
    lines = cached[1]
    return lines[line - 1] if 0 < line <= len(lines) else ""
