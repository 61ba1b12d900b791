"""A directed acyclic graph of named nodes; knows nothing about resources.

Edges point from a node to the nodes it depends on. Built on `graphlib`.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping


class CycleError(Exception):
    def __init__(self, cycle: list[str]):
        super().__init__(" -> ".join(cycle))
        self.cycle = cycle


class Graph:
    def __init__(self, dependencies: Mapping[str, Iterable[str]]):
        self.deps: dict[str, list[str]] = {n: list(d) for n, d in dependencies.items()}
        for ds in list(self.deps.values()):
            for d in ds:
                self.deps.setdefault(d, [])

    @property
    def nodes(self) -> list[str]:
        return list(self.deps)

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.deps}
        for n, ds in self.deps.items():
            for d in ds:
                out[d].append(n)
        return out

    def check_acyclic(self) -> None:
        try:
            graphlib.TopologicalSorter(self.deps).prepare()
        except graphlib.CycleError as exc:
            cycle = list(exc.args[1])
            # graphlib repeats the first node at the end; present each member once,
            # in dependency order (a -> b means a depends on b).
            if len(cycle) > 1 and cycle[0] == cycle[-1]:
                cycle = cycle[:-1]
            cycle.reverse()
            raise CycleError(cycle) from None

    def order(self) -> list[str]:
        """Dependencies first."""
        return list(graphlib.TopologicalSorter(self.deps).static_order())

    def reverse_order(self) -> list[str]:
        return list(reversed(self.order()))

    def downstream(self, roots: Iterable[str]) -> set[str]:
        """`roots` and everything that depends on them, transitively."""
        dependents = self.dependents()
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            stack.extend(dependents.get(n, []))
        return seen

    def upstream(self, roots: Iterable[str]) -> set[str]:
        """`roots` and everything they depend on, transitively."""
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            stack.extend(self.deps.get(n, []))
        return seen

    def to_dot(self, labels: Mapping[str, str] | None = None, name: str = "stack") -> str:
        labels = labels or {}
        lines = [f'digraph "{name}" {{', "  rankdir=LR;", '  node [shape=box, style=rounded];']
        for n in sorted(self.deps):
            label = labels.get(n, n).replace('"', '\\"')
            lines.append(f'  "{n}" [label="{label}"];')
        for n in sorted(self.deps):
            for d in sorted(self.deps[n]):
                lines.append(f'  "{d}" -> "{n}";')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self, labels: Mapping[str, str] | None = None) -> str:
        labels = labels or {}
        ids = {n: f"n{i}" for i, n in enumerate(sorted(self.deps))}
        lines = ["flowchart LR"]
        for n in sorted(self.deps):
            label = labels.get(n, n).replace('"', "'")
            lines.append(f'  {ids[n]}["{label}"]')
        for n in sorted(self.deps):
            for d in sorted(self.deps[n]):
                lines.append(f"  {ids[d]} --> {ids[n]}")
        return "\n".join(lines) + "\n"
