"""Compose YAML events into nodes, with every alias kept as a node of its own and bounded.

PyYAML's composer hands back the anchored node itself for each alias, so a walk
over its tree expands aliases without limit (a 1.5 KB "billion laughs" file
stands for a billion values) and loops forever on an alias inside its own
anchor. Composing from libyaml's events ourselves lets us refuse both at the
alias, with its file:line:col, before anything is expanded.
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import Diagnostic, Location, MlformError

MAX_ALIAS_VALUES = 100_000
"""How many values aliases may add to a document in all; a spec never needs more."""
MAX_DEPTH = 256
"""How deeply collections may nest; deeper is hostile or a generated mistake."""


class AliasNode:
    """A use of an anchor (`*name`): where it was written and the node it stands for."""

    __slots__ = ("name", "target", "start_mark")

    def __init__(self, name: str, target: Any, start_mark: Any):
        self.name = name
        self.target = target
        self.start_mark = start_mark


def compose(text: str, file: str) -> Any:
    """The document's root node (None for an empty document); aliases as `AliasNode`s.

    Raises `yaml.MarkedYAMLError` for syntax errors (the caller words them) and
    `MlformError` for alias bombs, recursive or undefined aliases and deep nesting.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    resolver = yaml.resolver.Resolver()
    anchors: dict[str, Any] = {}
    sizes: dict[int, int] = {}  # id(node) -> values it stands for, aliases expanded
    open_nodes: list[tuple[Any, Any]] = []  # (node, key pending for a mapping)
    expanded = 0
    root: Any = None

    def loc(mark) -> Location:
        return Location(file, mark.line + 1, mark.column + 1)

    def add(node: Any) -> None:
        nonlocal root
        if not open_nodes:
            root = node
            return
        parent, pending = open_nodes[-1]
        if isinstance(parent, yaml.SequenceNode):
            parent.value.append(node)
        elif pending is None:
            open_nodes[-1] = (parent, node)
        else:
            parent.value.append((pending, node))
            open_nodes[-1] = (parent, None)

    def anchor(event: Any, node: Any) -> None:
        if event.anchor is not None:
            anchors[event.anchor] = node

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark,
                                   style=event.style)
            sizes[id(node)] = 1
            anchor(event, node)
            add(node)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            if len(open_nodes) >= MAX_DEPTH:
                raise MlformError(Diagnostic(
                    f"YAML nested more than {MAX_DEPTH} levels deep",
                    location=loc(event.start_mark),
                    help="flatten the structure: a stack spec needs only a few levels"))
            kind = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) \
                else yaml.MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolver.resolve(kind, None, event.implicit)
            node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            anchor(event, node)
            open_nodes.append((node, None))
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            node, _ = open_nodes.pop()
            node.end_mark = event.end_mark
            children = node.value if isinstance(node, yaml.SequenceNode) \
                else [n for pair in node.value for n in pair]
            sizes[id(node)] = 1 + sum(sizes[id(_target(c))] for c in children)
            add(node)
        elif isinstance(event, yaml.AliasEvent):
            target = anchors.get(event.anchor)
            where = loc(event.start_mark)
            if target is None:
                raise MlformError(Diagnostic(
                    f"YAML alias '*{event.anchor}' names no anchor", location=where,
                    help=f"define '&{event.anchor}' on a value before this alias"))
            if any(target is n for n, _ in open_nodes):
                raise MlformError(Diagnostic(
                    f"recursive YAML alias '*{event.anchor}': it is inside the value "
                    f"anchored as '&{event.anchor}'", location=where,
                    help="an alias must refer to a value defined before it, outside itself; "
                         "write the value out instead"))
            expanded += sizes[id(target)]
            if expanded > MAX_ALIAS_VALUES:
                raise MlformError(Diagnostic(
                    f"YAML aliases expand to more than {MAX_ALIAS_VALUES:,} values "
                    f"(at '*{event.anchor}')", location=where,
                    detail="aliases that refer to aliases multiply: this is how an "
                           "'alias bomb' (billion laughs) makes a small file enormous",
                    help="write the repeated values out, or use fewer nested aliases"))
            node = AliasNode(event.anchor, target, event.start_mark)
            add(node)
        elif isinstance(event, yaml.DocumentStartEvent) and root is not None:
            raise MlformError(Diagnostic(
                "more than one YAML document in the file", location=loc(event.start_mark),
                help="a spec file holds one YAML document: remove the '---' and what follows "
                     "or move it to another file"))
    return root


def _target(node: Any) -> Any:
    return node.target if isinstance(node, AliasNode) else node
