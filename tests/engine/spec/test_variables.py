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


SECRET = "hunter2-do-not-print"
SENSITIVE_SPEC = """\
version: 1
stack: secrets
providers:
  null: {}
variables:
  api_port: {type: integer, sensitive: true, default: 1}
"""


@pytest.mark.e2e
@pytest.mark.parametrize("args, env, files, origin, location", [
    pytest.param(["--var", f"api_port={SECRET}"], {}, {}, "--var api_port",
                 "mlform.yaml:6:3", id="from-var"),
    pytest.param([], {"MLFORM_VAR_api_port": SECRET}, {}, "$MLFORM_VAR_api_port",
                 "mlform.yaml:6:3", id="from-environment"),
    pytest.param(["--var-file", "v.yaml"], {}, {"v.yaml": f"api_port: {SECRET}\n"}, "var file",
                 "v.yaml:1:1", id="from-var-file"),
    pytest.param(["--var-file", "v.yaml"], {}, {"v.yaml": f"api_port: '{SECRET}'\n"},
                 "var file", "v.yaml:1:1", id="from-var-file-quoted"),
])
def test_wrongly_typed_sensitive_value_is_never_echoed(null_stack, run_mlform, args, env, files,
                                                       origin, location):
    """The message names the variable and where it came from, and neither the summary nor
    the source excerpt under the location shows the value."""
    got = run_mlform(["validate", *args], null_stack(SENSITIVE_SPEC, **files), env=env)
    assert got.returncode == 1
    assert SECRET not in got.stdout + got.stderr
    assert (f"error: variable 'api_port' from {origin}: expected an integer; the value is not "
            "shown because the variable is sensitive\n") in got.stderr
    assert f"--> {location}\n" in got.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("var_file", [
    pytest.param(f"api_prot: {SECRET}\n", id="misspelt-name"),
    pytest.param(f"api_port: '{SECRET}\n", id="yaml-syntax-error"),
])
def test_var_file_errors_do_not_print_its_lines(null_stack, run_mlform, var_file):
    got = run_mlform(["validate", "--var-file", "v.yaml"],
                     null_stack(SENSITIVE_SPEC, **{"v.yaml": var_file}))
    assert got.returncode == 1
    assert SECRET not in got.stdout + got.stderr
    assert "--> v.yaml:1:" in got.stderr


def test_value_of_a_plain_variable_is_still_shown(stack):
    # Only sensitive values are withheld: the others help the user find the mistake.
    with pytest.raises(MlformError) as exc:
        _resolve(stack, ["count=lots"])
    assert exc.value.diagnostics[0].summary == \
        "variable 'count' from --var count: expected an integer, got 'lots'"


def test_number_too_long_for_python_is_a_type_error(stack):
    with pytest.raises(MlformError) as exc:
        _resolve(stack, ["count=" + "7" * 5000])
    assert "expected an integer, got '7777" in exc.value.diagnostics[0].summary


@pytest.mark.e2e
def test_missing_var_file_says_so_with_its_path(null_stack, run_mlform):
    stack = null_stack(SENSITIVE_SPEC)
    got = run_mlform(["validate", "--var-file", "nope.yaml"], stack)
    assert got.returncode == 1
    assert got.stderr == (
        "error: var file not found: nope.yaml\n"
        f"  = looked at {stack / 'nope.yaml'}\n"
        "help: check the path given to --var-file: a relative path is read from the current "
        "directory, then from the stack directory\n")
