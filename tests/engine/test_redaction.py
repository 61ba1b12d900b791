"""Which revealed inputs a provider must show as "(sensitive)"."""

from __future__ import annotations

import pytest
from mlform.engine.redaction import sensitive_fields, sensitive_gate_bounds
from mlform.engine.values import Secret


@pytest.mark.parametrize("gates, expected", [
    pytest.param([{"min": Secret(0.9)}, {"min": 0.1, "max": 0.3}], {(0, "min")},
                 id="one-bound"),
    pytest.param([{"min": 0.1}, Secret({"min": 0.2, "max": 0.4})], {(1, "min"), (1, "max")},
                 id="a-whole-gate"),  # a gate from a sensitive map variable
    pytest.param(Secret([{"min": 0.2}]), {(0, "min"), (0, "max")},
                 id="the-whole-list"),
    pytest.param([{"metric": Secret("auc"), "min": 0.2}], set(),
                 id="not-a-bound"),  # only the bounds are shown by gate results
    pytest.param(None, set(), id="no-gates"),
])
def test_sensitive_gate_bounds(gates, expected):
    assert sensitive_gate_bounds({"gates": gates}) == expected


def test_sensitive_fields_include_text_with_a_secret_inside():
    inputs = {"owner": Secret("team a"), "intended_use": "x", "description": ["a", Secret(1)]}
    assert sensitive_fields(inputs, ("owner", "intended_use", "description", "name")) == \
        {"owner", "description"}
