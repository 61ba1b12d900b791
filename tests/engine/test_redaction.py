"""Which revealed inputs a provider must show as "(sensitive)"."""

from __future__ import annotations

import pytest
from mlform.engine.redaction import scrub, sensitive_fields, sensitive_gate_bounds
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


@pytest.mark.parametrize("text, inputs, expected", [
    pytest.param("gate 'auc >= 0.85' failed: measured 0.8512", {"min": Secret(0.85)},
                 "gate 'auc >= (sensitive)' failed: measured 0.8512", id="a-number-whole"),
    pytest.param("not found: /data/tok3n/x.csv", {"source": Secret("tok3n")},
                 "not found: /data/(sensitive)/x.csv", id="text-inside-a-path"),
    pytest.param("port 8080 is taken", {"gates": [Secret({"min": 8080})]},
                 "port (sensitive) is taken", id="inside-a-secret-map"),
    pytest.param("epochs 5", {"epochs": 5, "flag": Secret(True)}, "epochs 5",
                 id="plain-values-and-booleans-stay"),
])
def test_scrub_hides_what_providers_say_of_secrets(text, inputs, expected):
    assert scrub(text, inputs) == expected
