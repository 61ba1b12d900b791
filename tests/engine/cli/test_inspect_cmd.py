"""Read-only and scaffolding commands: graph, schema, help, init, fmt, providers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mlform.engine.cli.main import COMMANDS
from null_pipeline import pipeline_spec

pytestmark = pytest.mark.e2e

SPEC = pipeline_spec("inspect")


def test_graph_dot(null_stack, run_mlform):
    got = run_mlform(["graph", "--format", "dot"], null_stack(SPEC))
    assert got.returncode == 0
    assert got.stdout.startswith('digraph "inspect" {')
    assert '"data" -> "train";' in got.stdout


def test_graph_mermaid(null_stack, run_mlform):
    got = run_mlform(["graph", "--format", "mermaid"], null_stack(SPEC))
    assert got.stdout.splitlines()[0] == "flowchart LR"
    assert 'n0["dataset.data"]' in got.stdout and "n0 --> n1" in got.stdout


def test_schema_is_a_json_schema_that_accepts_a_valid_spec(null_stack, run_mlform):
    import jsonschema
    from ruamel.yaml import YAML

    got = run_mlform(["schema"], null_stack(SPEC))
    schema = json.loads(got.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(YAML(typ="safe").load(SPEC))) == []
    assert list(validator.iter_errors({"stack": "x", "bogus": 1}))


@pytest.mark.parametrize("command", [[]] + [[c] for c in COMMANDS]
                         + [["state", s] for s in ("list", "show", "rm", "mv", "unlock")]
                         + [["audit", s] for s in ("log", "verify")],
                         ids=lambda c: " ".join(c) or "mlform")
def test_help_of_every_command(tmp_path, run_mlform, command):
    got = run_mlform([*command, "--help"], tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("Usage: mlform")


def test_top_level_help_imports_no_heavy_library(tmp_path):
    script = ("import sys\n"
              "from mlform.engine.cli.main import main\n"
              "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              "heavy = [m for m in ('torch', 'pandas', 'boto3', 'numpy', 'sklearn') "
              "if m in sys.modules]\n"
              "print('HEAVY', heavy, file=sys.stderr)\n")
    got = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert "HEAVY []" in got.stderr, got.stderr


def test_init_creates_a_stack_that_validates(tmp_path, run_mlform):
    got = run_mlform(["init", "fresh"], tmp_path)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "fresh" / "mlform.yaml").exists()
    got = run_mlform(["validate", "fresh"], tmp_path)
    assert got.returncode == 0, got.stderr
    assert "The stack 'fresh' is valid" in got.stdout


def test_fmt_check_flags_then_fixes(null_stack, run_mlform):
    stack = null_stack("stack: inspect\nversion: 1\nproviders: {null: {}}\n"
                       "resources:\n  data: {source: data.csv, type: dataset}\n")
    got = run_mlform(["fmt", "--check"], stack)
    assert got.returncode == 1 and "mlform.yaml" in got.stdout + got.stderr
    assert run_mlform(["fmt"], stack).returncode == 0
    assert run_mlform(["fmt", "--check"], stack).returncode == 0
    assert run_mlform(["validate"], stack).returncode == 0


def test_fmt_keeps_comments(null_stack, run_mlform):
    stack = null_stack("# the stack\nversion: 1\nstack: inspect  # named\nproviders: {null: {}}\n"
                       "resources: {}\n")
    run_mlform(["fmt"], stack)
    text = (stack / "mlform.yaml").read_text()
    assert "# the stack" in text and "# named" in text


def test_providers_lists_installed_and_used(null_stack, run_mlform):
    got = run_mlform(["providers"], null_stack(SPEC))
    assert got.returncode == 0, got.stderr
    assert "null" in got.stdout and "(type null, installed): 2 resource(s)" in got.stdout


def test_validate_outside_a_stack_says_how_to_start(tmp_path, run_mlform):
    got = run_mlform(["validate"], tmp_path)
    assert got.returncode == 1
    assert "no mlform.yaml in" in got.stderr and "mlform init" in got.stderr


def test_debug_flag_shows_the_traceback(tmp_path, run_mlform):
    got = run_mlform(["validate"], tmp_path, env={"MLFORM_DEBUG": "1"})
    assert got.returncode == 1 and "Traceback" in got.stderr
