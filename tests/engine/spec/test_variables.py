"""Variable values: precedence, coercion from text, and what is reported when one is missing."""

from __future__ import annotations

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.spec.loader import load_stack
from mlform.engine.spec.variables import parse_cli_vars, read_var_files, resolve
from mlform.engine.values import Secret

SPEC = """\
version: 1
stack: vars
providers:
  null: {}
variables:
  level: {type: string, default: from-default}
  n: {type: number}
  count: {type: integer, default: 1}
  on: {type: bool, default: false}
  items: {type: list, default: []}
  cfg: {type: map, default: {}}
  token: {type: string, sensitive: true, default: d}
"""


@pytest.fixture
def stack(null_stack):
    return load_stack(null_stack(SPEC))


def _resolve(stack, cli=(), files=None, env=None):
    values = {"n": "1"} if "n" not in (files or {}) else {}
    return resolve(stack.variables, stack.positions, {**values, **parse_cli_vars(list(cli))},
                   files or {}, {}, environ=env or {})


@pytest.mark.parametrize("cli, files, env, expected", [
    pytest.param([], {}, {}, "from-default", id="default"),
    pytest.param([], {}, {"MLFORM_VAR_level": "env"}, "env", id="env-over-default"),
    pytest.param([], {"level": "file"}, {"MLFORM_VAR_level": "env"}, "file",
                 id="var-file-over-env"),
    pytest.param(["level=cli"], {"level": "file"}, {"MLFORM_VAR_level": "env"}, "cli",
                 id="cli-over-var-file"),
    pytest.param(["level=a", "level=b"], {}, {}, "b", id="last-cli-wins"),
    pytest.param(["level=x=y"], {}, {}, "x=y", id="value-may-hold-equals"),
])
def test_precedence(stack, cli, files, env, expected):
    assert _resolve(stack, cli, files, env)["level"] == expected


@pytest.mark.parametrize("cli, name, expected", [
    pytest.param("n=0.5", "n", 0.5, id="number-from-text"),
    pytest.param("count=7", "count", 7, id="integer-from-text"),
    pytest.param("on=yes", "on", True, id="bool-yes"),
    pytest.param("on=FALSE", "on", False, id="bool-upper"),
    pytest.param('items=["a", 2]', "items", ["a", 2], id="list-as-json"),
    pytest.param('cfg={"a": 1}', "cfg", {"a": 1}, id="map-as-json"),
    pytest.param("level=42", "level", "42", id="string-stays-text"),
])
def test_text_values_are_coerced(stack, cli, name, expected):
    got = _resolve(stack, [cli])[name]
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("cli, message", [
    pytest.param("n=high", "expected a number, got 'high'", id="not-a-number"),
    pytest.param("count=1.5", "expected an integer", id="float-for-integer"),
    pytest.param("on=maybe", "expected true or false", id="not-a-bool"),
    pytest.param("items=3", "expected a list", id="not-a-list"),
])
def test_ill_typed_values_name_variable_and_origin(stack, cli, message):
    with pytest.raises(MlformError) as exc:
        _resolve(stack, [cli])
    summary = exc.value.diagnostics[0].summary
    assert message in summary and f"--var {cli.split('=')[0]}" in summary


def test_sensitive_variable_is_wrapped(stack):
    assert isinstance(_resolve(stack, ["token=abc"])["token"], Secret)


def test_missing_required_variable_is_named_with_every_way_to_set_it(stack):
    with pytest.raises(MlformError) as exc:
        resolve(stack.variables, stack.positions, {}, {}, {}, environ={})
    d = exc.value.diagnostics[0]
    assert d.summary == "no value for required variable 'n'"
    assert str(d.location).endswith("/mlform.yaml:7:3")
    assert "--var n=VALUE" in d.help and "MLFORM_VAR_n" in d.help


def test_var_file_values_keep_their_yaml_types(tmp_path, stack):
    (tmp_path / "v.yaml").write_text("n: 2.5\nitems: [1, 2]\non: true\n")
    values, where = read_var_files(["v.yaml"], tmp_path)
    assert values == {"n": 2.5, "items": [1, 2], "on": True}
    got = resolve(stack.variables, stack.positions, {}, values, where, environ={})
    assert (got["n"], got["items"], got["on"]) == (2.5, [1, 2], True)


def test_later_var_file_wins(tmp_path):
    (tmp_path / "a.yaml").write_text("level: a\n")
    (tmp_path / "b.json").write_text('{"level": "b"}')
    assert read_var_files(["a.yaml", "b.json"], tmp_path)[0] == {"level": "b"}


@pytest.mark.parametrize("pair", ["novalue", "=x"], ids=["no-equals", "no-name"])
def test_bad_var_syntax(pair):
    with pytest.raises(MlformError, match="expected NAME=VALUE"):
        parse_cli_vars([pair])
