"""The output models: what a provider may return for each type, judged attribute by
attribute, and the reference docs drawn from them."""

from __future__ import annotations

import pytest
from mlform.engine.spec.models import RESOURCE_OUTPUTS, RESOURCE_TYPES
from mlform.engine.spec.outputs import OUTPUT_MODELS, descriptions, output_problems, split
from mlform.engine.values import Secret, Unknown

MODEL = frozenset({"uri", "name", "version"})


@pytest.mark.parametrize(("outputs", "produced", "require", "problems"), [
    pytest.param({"uri": "r://m/1", "name": "m", "version": 1}, MODEL, True, [],
                 id="fits"),
    pytest.param({"uri": "r://m/1", "name": "m"}, MODEL, True, ["output 'version' is missing"],
                 id="declared-output-missing"),
    pytest.param({"uri": "r://m/1", "name": "m"}, MODEL, False, [],
                 id="missing-allowed-on-refresh"),
    pytest.param({"uri": "r://m/1", "name": 7, "version": 1}, MODEL, True,
                 ["output 'name': input should be a valid string (got int)"],
                 id="wrong-type"),
    pytest.param({"uri": "r://m/1", "name": "m", "version": "v1"}, MODEL, True,
                 ["output 'version': input should be a valid integer, unable to parse "
                  "string as an integer (got str)"], id="unparsable-number"),
    pytest.param({"uri": "r://m/1", "name": "m", "version": 1, "aliases": {"a": "x"}},
                 MODEL | {"aliases"}, True,
                 ["output 'aliases.a': input should be a valid integer, unable to parse "
                  "string as an integer (got str)"], id="nested-path-named"),
    pytest.param({"uri": "r://m/1", "name": "m", "version": 1, "card": 5}, MODEL, True, [],
                 id="undeclared-output-is-private"),
    pytest.param({"uri": "r://m/1", "name": "m", "version": 1, "arn": {"x": 1}}, MODEL, True,
                 [], id="provider-private-key-not-judged"),
    pytest.param({"uri": Secret("s"), "name": Unknown("m.name"), "version": 1}, MODEL, True,
                 [], id="sensitive-and-unknown-are-opaque"),
    pytest.param({"card": 5}, None, True,
                 ["output 'card': input should be a valid string (got int)"],
                 id="undeclared-provider-judged-on-every-attribute"),
])
def test_output_problems(outputs, produced, require, problems):
    assert output_problems("model", outputs, produced, require) == problems


def test_split_keeps_private_keys_apart():
    portable, private = split("endpoint", {"url": "http://x", "pid": 42, "traffic": {"a": 1}})
    assert portable == {"url": "http://x", "traffic": {"a": 1}}
    assert private == {"pid": 42}


def test_every_resource_type_has_an_output_model_and_the_docs_come_from_it():
    assert set(OUTPUT_MODELS) == set(RESOURCE_TYPES)
    for rtype, model in OUTPUT_MODELS.items():
        assert RESOURCE_OUTPUTS[rtype] == descriptions(rtype)
        assert list(RESOURCE_OUTPUTS[rtype]) == list(model.model_fields)
        assert all(RESOURCE_OUTPUTS[rtype].values()), f"{rtype}: an output without a docstring"
