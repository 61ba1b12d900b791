"""The generic graph: order, reachability, cycles, rendering."""

from __future__ import annotations

import pytest
from mlform.engine.graph import CycleError, Graph

DIAMOND = {"top": ["left", "right"], "left": ["base"], "right": ["base"], "base": [],
           "alone": []}


def test_order_puts_dependencies_first():
    order = Graph(DIAMOND).order()
    for node, deps in DIAMOND.items():
        assert all(order.index(d) < order.index(node) for d in deps)


def test_reverse_order_puts_dependents_first():
    order = Graph(DIAMOND).reverse_order()
    assert order.index("top") < order.index("left") < order.index("base")


@pytest.mark.parametrize("roots, upstream, downstream", [
    pytest.param(["left"], {"left", "base"}, {"left", "top"}, id="middle"),
    pytest.param(["base"], {"base"}, {"base", "left", "right", "top"}, id="root"),
    pytest.param(["alone"], {"alone"}, {"alone"}, id="isolated"),
    pytest.param(["left", "right"], {"left", "right", "base"}, {"left", "right", "top"},
                 id="several"),
])
def test_reachability(roots, upstream, downstream):
    g = Graph(DIAMOND)
    assert g.upstream(roots) == upstream
    assert g.downstream(roots) == downstream


def test_undeclared_dependency_becomes_a_node():
    assert set(Graph({"a": ["b"]}).nodes) == {"a", "b"}


@pytest.mark.parametrize("deps, members", [
    pytest.param({"a": ["b"], "b": ["a"]}, {"a", "b"}, id="two"),
    pytest.param({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}, {"a", "b", "c"}, id="three"),
    pytest.param({"a": ["a"]}, {"a"}, id="self"),
])
def test_cycle_names_exactly_its_members(deps, members):
    with pytest.raises(CycleError) as exc:
        Graph(deps).check_acyclic()
    assert set(exc.value.cycle) == members and len(exc.value.cycle) == len(members)


def test_cycle_is_listed_in_dependency_direction():
    with pytest.raises(CycleError) as exc:
        Graph({"a": ["b"], "b": ["c"], "c": ["a"]}).check_acyclic()
    cycle = exc.value.cycle
    for i, node in enumerate(cycle):  # each member depends on the next
        assert cycle[(i + 1) % len(cycle)] in {"a": ["b"], "b": ["c"], "c": ["a"]}[node]


def test_dot_has_an_edge_from_dependency_to_dependent():
    dot = Graph({"m": ["t"], "t": []}).to_dot({"m": "model.m"}, "s")
    assert dot.startswith('digraph "s" {') and '"t" -> "m";' in dot and 'label="model.m"' in dot


def test_mermaid_is_a_flowchart_with_every_edge():
    text = Graph({"m": ["t"], "t": []}).to_mermaid()
    assert text.splitlines()[0] == "flowchart LR" and "n1 --> n0" in text
