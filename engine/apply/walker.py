"""A parallel walk of a dependency graph; knows nothing about resources.

A node runs once all its dependencies succeeded. A failed node stops only its
dependents (they are skipped, with the reason); the rest go on. `stop()` stops
scheduling new nodes while those in flight finish.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field


@dataclass
class WalkResult:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    not_started: list[str] = field(default_factory=list)


class Walker:
    def __init__(self, deps: Mapping[str, list[str]], parallelism: int = 10):
        self.deps = {n: [d for d in ds if d in deps] for n, ds in deps.items()}
        self.parallelism = max(1, parallelism)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def walk(self, run: Callable[[str], str | None],
             on_skip: Callable[[str, str], None] | None = None) -> WalkResult:
        """`run(node)` returns None on success or an error text."""
        result = WalkResult()
        waiting = {n: set(ds) for n, ds in self.deps.items()}
        dependents: dict[str, list[str]] = {n: [] for n in self.deps}
        for n, ds in self.deps.items():
            for d in ds:
                dependents[d].append(n)
        ready = deque(n for n, ds in waiting.items() if not ds)
        running: dict[Future, str] = {}

        def settle(node: str, error: str | None) -> None:
            if error is None:
                result.succeeded.append(node)
                for child in dependents[node]:
                    waiting[child].discard(node)
                    if not waiting[child] and child not in result.skipped:
                        ready.append(child)
            else:
                result.failed[node] = error
                self._skip_below(node, dependents, result, on_skip, f"'{node}' failed")

        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            while ready or running:
                while ready and len(running) < self.parallelism and not self._stop.is_set():
                    node = ready.popleft()
                    running[pool.submit(self._guarded, run, node)] = node
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    settle(running.pop(fut), fut.result())
        finished = set(result.succeeded) | set(result.failed) | set(result.skipped)
        result.not_started = [n for n in self.deps if n not in finished]
        return result

    @staticmethod
    def _guarded(run: Callable[[str], str | None], node: str) -> str | None:
        try:
            return run(node)
        except Exception as exc:  # a bug in one node must not stop the others
            return f"{type(exc).__name__}: {exc}"

    def _skip_below(self, node: str, dependents, result: WalkResult, on_skip, why: str) -> None:
        stack = list(dependents[node])
        while stack:
            child = stack.pop()
            if child in result.skipped:
                continue
            result.skipped[child] = why
            if on_skip:
                on_skip(child, why)
            stack.extend(dependents[child])
