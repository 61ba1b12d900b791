"""The providers a stack uses, configured once per command and created on first use."""

from __future__ import annotations

import threading
from pathlib import Path

from .diagnostics import Diagnostic, MlformError
from .provider import Problem, Provider, ResourceRef
from .registry import make_provider
from .spec.loader import Stack


class ProviderSet:
    def __init__(self, stack_name: str, stack_dir: Path, specs: dict, positions=None):
        self.stack_name = stack_name
        self.stack_dir = stack_dir
        self.specs = specs  # provider name -> ProviderSpec
        self.positions = positions
        self._made: dict[str, Provider] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_stack(cls, stack: Stack) -> ProviderSet:
        return cls(stack.name, stack.dir, stack.providers, stack.positions)

    def get(self, name: str) -> Provider:
        with self._lock:
            if name not in self._made:
                spec = self.specs.get(name)
                if spec is None:
                    raise MlformError.simple(
                        f"state refers to provider '{name}', which the stack no longer declares",
                        help=f"add '{name}:' back under 'providers:' so its resources can be "
                             "destroyed or moved, or remove them from state with "
                             "'mlform state rm'")
                try:
                    provider = make_provider(spec.type, name, spec.config, self.stack_name,
                                             self.stack_dir)
                except MlformError as exc:
                    loc = self.positions.of(("providers", name), key=True) \
                        if self.positions else None
                    d = exc.diagnostics[0]
                    raise MlformError(Diagnostic(d.summary, location=loc, help=d.help,
                                                 detail=d.detail)) from None
                problems = provider.validate_config()
                if problems:
                    raise MlformError(*[self._config_problem(name, p) for p in problems])
                self._made[name] = provider
            return self._made[name]

    def _config_problem(self, name: str, problem: str | Problem) -> Diagnostic:
        """A configuration problem at its place in the provider's block, or at the block."""
        path: tuple[str | int, ...] = ("providers", name)
        key = True
        if isinstance(problem, Problem):
            path, key = path + problem.path, problem.key or not problem.path
        loc = self.positions.of(path, key=key) if self.positions else None
        return Diagnostic(f"provider '{name}': {problem}", location=loc,
                          help=getattr(problem, "help", ""))

    def close(self) -> None:
        for p in self._made.values():
            p.close()


def ref(name: str, rtype: str, rid: str | None = None) -> ResourceRef:
    return ResourceRef(name=name, type=rtype, id=rid)
