"""The parallel walk: ordering, parallelism, failure isolation, and stopping."""

from __future__ import annotations

import threading
import time

import pytest
from mlform.engine.apply.walker import Walker


class Probe:
    """Records start order and the highest number of nodes running at once."""

    def __init__(self, seconds: float = 0.0, fail: frozenset[str] = frozenset()):
        self.seconds = seconds
        self.fail = fail
        self.running = 0
        self.peak = 0
        self.started: list[str] = []
        self.finished: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, node: str) -> str | None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.started.append(node)
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
            self.finished.append(node)
        return f"{node} broke" if node in self.fail else None


@pytest.mark.parametrize("parallelism, expected_peak", [
    pytest.param(1, 1, id="serial"),
    pytest.param(3, 3, id="three"),
    pytest.param(20, 12, id="more-workers-than-nodes"),  # bounded by the nodes available
])
def test_parallelism_is_honoured(parallelism, expected_peak):
    probe = Probe(seconds=0.05)
    result = Walker({f"n{i}": [] for i in range(12)}, parallelism).walk(probe)
    assert probe.peak == expected_peak
    assert len(result.succeeded) == 12


def test_a_node_starts_only_after_its_dependencies_finish():
    probe = Probe(seconds=0.01)
    deps = {"a": [], "b": ["a"], "c": ["b", "a"], "d": []}
    Walker(deps, 4).walk(probe)
    for node, ds in deps.items():
        for d in ds:
            assert probe.finished.index(d) < probe.started.index(node)


def test_a_failure_skips_only_its_dependents():
    deps = {"bad": [], "child": ["bad"], "grandchild": ["child"], "other": [],
            "after_other": ["other"], "mixed": ["bad", "other"]}
    skipped = []
    result = Walker(deps, 4).walk(Probe(fail=frozenset({"bad"})),
                                  on_skip=lambda n, why: skipped.append(n))
    assert result.failed == {"bad": "bad broke"}
    assert set(result.skipped) == {"child", "grandchild", "mixed"}
    assert set(skipped) == set(result.skipped)
    assert all(why == "'bad' failed" for why in result.skipped.values())
    assert sorted(result.succeeded) == ["after_other", "other"]


def test_an_exception_is_a_failure_of_that_node_only():
    def run(node):
        if node == "x":
            raise RuntimeError("boom")
    result = Walker({"x": [], "y": []}, 2).walk(run)
    assert result.failed == {"x": "RuntimeError: boom"} and result.succeeded == ["y"]


def test_stop_lets_in_flight_finish_and_starts_nothing_new():
    walker = Walker({f"n{i}": [] for i in range(10)}, parallelism=2)
    probe = Probe(seconds=0.2)

    def run(node):
        if not probe.started:
            threading.Timer(0.05, walker.stop).start()
        return probe(node)

    result = walker.walk(run)
    assert len(probe.started) == 2  # the two in flight when stop() came
    assert sorted(probe.finished) == sorted(probe.started)
    assert sorted(result.succeeded) == sorted(probe.started)
    assert len(result.not_started) == 8 and walker.stopping


def test_empty_graph_walks_to_nothing():
    assert Walker({}).walk(Probe()).succeeded == []
