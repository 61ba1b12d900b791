"""`${...}` references: parsing, substitution, types, escapes and secrecy."""

from __future__ import annotations

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.evaluate import Evaluator
from mlform.engine.spec.loader import load_stack
from mlform.engine.spec.refs import RefSyntaxError, parse_ref, refs_in_string, substitute
from mlform.engine.values import Secret, Unknown

VALUES = {"var.n": 3, "var.flag": True, "var.tags": ["a", "b"], "var.cfg": {"k": 1},
          "data.uri": "null://d/1", "var.none": None}


def _lookup(ref):
    return VALUES[ref.text]


@pytest.mark.parametrize("text, expected", [
    pytest.param("${var.n}", 3, id="whole-int"),  # a whole-string reference keeps its type
    pytest.param("${var.flag}", True, id="whole-bool"),
    pytest.param("${var.tags}", ["a", "b"], id="whole-list"),
    pytest.param("${ var.n }", 3, id="whole-with-spaces"),  # spaces inside braces are allowed
    pytest.param("n=${var.n}", "n=3", id="embedded-int"),  # embedded: stringified
    pytest.param("${var.flag}!", "true!", id="embedded-bool-lowercase"),  # YAML's spelling
    pytest.param("cfg ${var.cfg}", 'cfg {"k": 1}', id="embedded-mapping-as-json"),
    pytest.param("[${var.none}]", "[]", id="embedded-none-empty"),
    pytest.param("${data.uri}/${var.n}", "null://d/1/3", id="two-refs"),
    pytest.param("$${var.n}", "${var.n}", id="escape"),  # $${ writes a literal ${
    pytest.param("cost: $${x} and ${var.n}", "cost: ${x} and 3", id="escape-beside-ref"),
    pytest.param("plain $ text", "plain $ text", id="no-ref"),
])
def test_substitute(text, expected):
    got = substitute(text, _lookup)
    assert got == expected and type(got) is type(expected)


def test_substitute_walks_nested_values():
    assert substitute({"a": ["${var.n}", {"b": "x${var.n}"}]}, _lookup) == \
        {"a": [3, {"b": "x3"}]}


def test_embedding_a_secret_makes_the_string_secret():
    got = substitute("Bearer ${var.t}", lambda ref: Secret("s3cr3t"))
    assert isinstance(got, Secret) and got.reveal() == "Bearer s3cr3t"
    assert "s3cr3t" not in repr(got) and "s3cr3t" not in str(got)


def test_whole_secret_stays_secret():
    assert isinstance(substitute("${var.t}", lambda ref: Secret(1)), Secret)


def test_embedding_an_unknown_makes_the_string_unknown():
    got = substitute("v-${train.artifact}", lambda ref: Unknown("train.artifact"))
    assert isinstance(got, Unknown)


@pytest.mark.parametrize("text, message", [
    pytest.param("${}", "empty reference", id="empty"),
    pytest.param("${train}", "names no attribute", id="no-attribute"),
    pytest.param("${a..b}", "invalid reference", id="empty-segment"),
    pytest.param("${a b.c}", "invalid reference", id="space-in-name"),
    pytest.param("x ${a.b", "unterminated", id="unterminated"),
])
def test_bad_references_are_refused(text, message):
    with pytest.raises(RefSyntaxError, match=message):
        list(refs_in_string(text))


def test_reference_offset_is_where_it_starts():
    assert [r.offset for r in refs_in_string("ab ${x.y} ${var.z}")] == [3, 10]


def test_parse_ref_splits_root_and_path():
    ref = parse_ref("train.metrics.auc")
    assert (ref.root, ref.path, ref.is_var) == ("train", ("metrics", "auc"), False)


SPEC = """\
version: 1
stack: refs
providers:
  null: {}
variables:
  token: {type: string, sensitive: true}
resources:
  train:
    type: training_job
    dataset: data.csv
    algorithm: mlp_classifier
    target: y
  m:
    type: model
    artifact: ${train.artifact}
    description: "auc ${train.metrics.auc}"
    gates:
      - metric: auc
        min: ${train.metrics.auc}
    tags: {auth: "Bearer ${var.token}"}
"""


@pytest.fixture
def stack(null_stack):
    return load_stack(null_stack(SPEC))


def _evaluator(stack, train_attrs):
    return Evaluator(stack, {"token": Secret("tok-123")},
                     lambda name: train_attrs if name == "train" else None)


def test_nested_attribute_keeps_its_type(stack):
    inputs = _evaluator(stack, {"artifact": "null://a", "metrics": {"auc": 0.91}}).inputs("m")
    assert inputs["gates"][0]["min"] == 0.91
    assert inputs["description"] == "auc 0.91"
    assert inputs["artifact"] == "null://a"


def test_sensitive_variable_inside_text_is_sensitive(stack):
    inputs = _evaluator(stack, {"artifact": "a", "metrics": {"auc": 1}}).inputs("m")
    auth = inputs["tags"]["auth"]
    assert isinstance(auth, Secret) and auth.reveal() == "Bearer tok-123"


def test_attribute_of_a_resource_not_yet_made_is_unknown(stack):
    inputs = Evaluator(stack, {"token": Secret("t")}, lambda name: None).inputs("m")
    assert isinstance(inputs["artifact"], Unknown)
    assert isinstance(inputs["description"], Unknown)


def test_missing_nested_key_names_the_reference(stack):
    with pytest.raises(MlformError, match=r"'\$\{train.metrics.auc\}' cannot be resolved"):
        _evaluator(stack, {"artifact": "a", "metrics": {"f1": 1}}).inputs("m")
