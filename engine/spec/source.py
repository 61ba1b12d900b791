"""Reading YAML so that every value keeps its file, line and column.

PyYAML's composer (libyaml's C parser where available) gives a node tree with
a mark on every node; we turn it into plain dicts and lists and a flat
`Positions` table keyed by each value's path. Scalars follow YAML 1.2's core
schema, so `on:`, `yes` and `no` stay strings. (`mlform fmt` keeps using
ruamel.yaml, which can rewrite a file with its comments.)
"""

from __future__ import annotations

import re
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


def parse_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse YAML text into plain data plus the position of every value."""
    import yaml

    from .yaml_nodes import compose

    try:
        root = compose(text, file)
    except yaml.MarkedYAMLError as exc:
        raise MlformError(_yaml_error(exc, text, file)) from None
    except yaml.YAMLError as exc:
        raise MlformError.simple(f"cannot parse {file}: {exc}",
                                 help="a spec file holds one YAML document") from None
    positions = Positions()
    data = None if root is None else _Walker(file, positions).plain(root, ())
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


_NULL = re.compile(r"^(~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
         "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"


def resolve_scalar(text: str, plain: bool, tag: str) -> Any:
    """A scalar's value under YAML 1.2's core schema; quoted scalars are strings."""
    if not plain or tag == STR_TAG:
        return text
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


class _Walker:
    def __init__(self, file: str, positions: Positions):
        self.file = file
        self.pos = positions

    def loc(self, node, length: int = 1) -> Location:
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1, length)

    def plain(self, node, path: PathKey) -> Any:
        import yaml

        from .yaml_nodes import AliasNode

        if isinstance(node, AliasNode):
            # Bounded and checked for recursion when composed; here it is its value.
            return self.plain(node.target, path)
        if isinstance(node, yaml.ScalarNode):
            # Plain scalars have no style (None from PyYAML, "" from libyaml).
            try:
                return resolve_scalar(node.value, not node.style, node.tag)
            except ValueError:
                raise MlformError(_huge_number(node.value, self.loc(node, len(node.value)))) \
                    from None
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.pos.values[path + (i,)] = self.loc(item, _length(item))
                items.append(self.plain(item, path + (i,)))
            return items
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                for merged in (value_node.value if isinstance(value_node, yaml.SequenceNode)
                               else [value_node]):
                    values = self.plain(merged, path)
                    if not isinstance(values, dict):
                        raise MlformError(Diagnostic(
                            "'<<' merges a value that is not a mapping",
                            location=self.loc(merged), help="write '<<: *anchor' where "
                            "'&anchor' marks a mapping, or a list of such aliases"))
                    for k, v in values.items():
                        out.setdefault(k, v)
                continue
            key = self.plain(key_node, path)
            # YAML reads a bare `null:` or `true:` key as a value; a name was meant.
            name = _key_name(key)
            kpath = path + (name,)
            if name in out:
                first = self.pos.keys.get(kpath)
                raise MlformError(Diagnostic(
                    f"duplicate key '{name}'", location=self.loc(key_node, len(name)),
                    detail=f"first written at {first}" if first else "",
                    help="each key may appear once in a mapping: remove or rename one"))
            self.pos.keys[kpath] = self.loc(key_node, len(name))
            self.pos.values[kpath] = self.loc(value_node, _length(value_node))
            out[name] = self.plain(value_node, kpath)
        return out


def _huge_number(text: str, where: Location) -> Diagnostic:
    import sys

    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300
    return Diagnostic(f"number too long: {len(text):,} characters", location=where,
                      help=f"write a number of at most {limit} digits, or quote it to "
                           "make it a string")


def _length(node) -> int:
    import yaml

    return len(node.value) if isinstance(node, yaml.ScalarNode) and node.value else 1


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
    if "tab" in problem or "\t" in src[col - 2:col]:
        # A tab is the cause wherever it is; a `${` on the same line is a coincidence.
        help_ = "YAML does not allow tabs for indentation: use spaces"
    elif "${" in src or "${" in context_line:
        help_ = ("a '${...}' reference inside YAML flow style ({...} or [...]) must be quoted, "
                 "e.g. {model: \"${m.uri}\"}, or written in block style")
    elif "found duplicate key" in problem or "duplicate key" in str(exc):
        help_ = "each key may appear once in a mapping: remove or rename the repeated one"
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
