"""A sensitive value never reaches disk or the terminal, whatever command runs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

SECRET = "zq-SECRET-7f3a9c-value"

SPEC = """\
version: 1
stack: secrets
providers:
  null: {}
variables:
  token: {type: string, sensitive: true}
resources:
  data:
    type: dataset
    source: data.csv
    tags: {auth: "Bearer ${var.token}"}
  ep:
    type: endpoint
    variants:
      a: {model: "${data.uri}"}
    tags: {token: "${var.token}"}
outputs:
  header: {value: "Bearer ${var.token}", sensitive: true}
  leaked: {value: "${var.token}"}
"""


def test_sensitive_value_is_never_written_or_printed(null_stack, run_mlform):
    stack = null_stack(SPEC)
    env = {"MLFORM_VAR_token": SECRET}
    runs = [
        ["plan", "--out", "p.json"],
        ["plan", "--format", "json"],
        ["plan", "--format", "markdown"],
        ["apply", "p.json"],
        ["show"], ["show", "--json"], ["show", "data"],
        ["output"], ["output", "--json"], ["output", "header"], ["output", "leaked", "--raw"],
        ["state", "show", "ep"],
        ["drift", "--format", "json"],
        ["audit", "log"],
        ["destroy", "--auto-approve"],
    ]
    for args in runs:
        got = run_mlform(args, stack, env=env)
        assert got.returncode in (0, 2), (args, got.stderr)
        assert SECRET not in got.stdout + got.stderr, args
        assert "Traceback" not in got.stderr
    files = [p for p in stack.rglob("*") if p.is_file() and p.name != "mlform.yaml"]
    assert stack / "p.json" in files and stack / ".mlform" / "state.json" in files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_sensitive_output_is_shown_as_sensitive(null_stack, run_mlform):
    stack = null_stack(SPEC)
    env = {"MLFORM_VAR_token": SECRET}
    assert run_mlform(["apply", "--auto-approve"], stack, env=env).returncode == 0
    got = run_mlform(["output"], stack)
    assert 'header = "(sensitive)"' in got.stdout
    assert 'leaked = "(sensitive)"' in got.stdout  # built from a secret, so secret too
