"""`mlform plan`, `apply` and `destroy` through the installed command."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

SPEC = """\
version: 1
stack: cli
providers:
  null: {}
variables:
  suffix: {type: string, default: a}
resources:
  data:
    type: dataset
    source: data-${var.suffix}.csv
  train:
    type: training_job
    dataset: ${data.uri}
    algorithm: mlp_classifier
    target: y
outputs:
  artifact: {value: "${train.artifact}"}
"""


@pytest.fixture
def stack(null_stack):
    return null_stack(SPEC)


def _ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_detailed_exitcode_is_2_with_changes_and_0_without(stack, run_mlform):
    got = run_mlform(["plan", "--detailed-exitcode"], stack)
    assert got.returncode == 2, got.stderr
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in got.stdout
    _ok(run_mlform(["apply", "--auto-approve"], stack))
    got = _ok(run_mlform(["plan", "--detailed-exitcode"], stack))
    assert "No changes" in got.stdout


def test_plan_without_detailed_exitcode_is_0_with_changes(stack, run_mlform):
    _ok(run_mlform(["plan"], stack))


def test_json_plan_is_valid_json_with_summary(stack, run_mlform):
    got = _ok(run_mlform(["plan", "--format", "json"], stack))
    doc = json.loads(got.stdout)
    assert doc["summary"] == {"add": 2, "change": 0, "destroy": 0, "move": 0}
    assert [c["action"] for c in doc["changes"]] == ["create", "create"]


def test_markdown_plan_has_the_table(stack, run_mlform):
    got = _ok(run_mlform(["plan", "--format", "markdown"], stack))
    assert "| | Resource | Type | Action | Why |" in got.stdout
    assert "| `+` | `data` | dataset |" in got.stdout
    assert "**Plan: 2 to add, 0 to change, 0 to destroy.**" in got.stdout


def test_saved_plan_applies_once_then_is_stale(stack, run_mlform):
    _ok(run_mlform(["plan", "--out", "p.json"], stack))
    got = _ok(run_mlform(["apply", "p.json"], stack))  # a saved plan needs no confirmation
    assert "Apply complete: 2 added, 0 changed, 0 destroyed." in got.stdout
    again = run_mlform(["apply", "p.json"], stack)
    assert again.returncode == 1
    assert "plan file p.json is stale: it was made against state serial 0, and the state is " \
           "now at serial 1" in again.stderr
    assert "help: " in again.stderr and "Traceback" not in again.stderr


def test_saved_plan_is_refused_after_the_spec_changes(stack, run_mlform):
    _ok(run_mlform(["plan", "--out", "p.json"], stack))
    (stack / "mlform.yaml").write_text(SPEC.replace("target: y", "target: z"))
    got = run_mlform(["apply", "p.json"], stack)
    assert got.returncode == 1
    assert "stack's spec files changed since it was made" in got.stderr
    assert not (stack / ".mlform" / "null").exists()


def test_saved_plan_is_refused_with_other_variables(stack, run_mlform):
    _ok(run_mlform(["plan", "--out", "p.json"], stack))
    got = run_mlform(["apply", "p.json", "--var", "suffix=b"], stack)
    assert got.returncode == 1 and "other variable values" in got.stderr


def test_apply_without_terminal_or_auto_approve_refuses(stack, run_mlform):
    got = run_mlform(["apply"], stack, input="yes\n")
    assert got.returncode == 1
    assert "refusing to perform these actions without confirmation: no terminal" in got.stderr
    assert "--auto-approve" in got.stderr
    assert not (stack / ".mlform" / "null").exists()


def test_destroy_without_terminal_refuses(stack, run_mlform):
    _ok(run_mlform(["apply", "--auto-approve"], stack))
    got = run_mlform(["destroy"], stack)
    assert got.returncode == 1 and "refusing to destroy these resources" in got.stderr


def test_apply_then_destroy_leaves_nothing(stack, run_mlform):
    got = _ok(run_mlform(["apply", "--auto-approve"], stack))
    assert "artifact = null://" in got.stdout
    assert len(list((stack / ".mlform" / "null").glob("*.json"))) == 2
    got = _ok(run_mlform(["destroy", "--auto-approve"], stack))
    assert "Destroy complete: 0 added, 0 changed, 2 destroyed." in got.stdout
    assert list((stack / ".mlform" / "null").glob("*.json")) == []
    assert json.loads((stack / ".mlform" / "state.json").read_text())["resources"] == {}


def test_stack_dir_argument_works_from_elsewhere(stack, run_mlform, tmp_path):
    got = run_mlform(["plan", "--detailed-exitcode", str(stack)], tmp_path)
    assert got.returncode == 2, got.stderr


def test_variable_precedence_through_the_command(stack, run_mlform, tmp_path):
    (tmp_path / "v.yaml").write_text("suffix: file\n")
    env = {"MLFORM_VAR_suffix": "env"}

    def source(args):
        got = _ok(run_mlform(["plan", "--format", "json", *args], stack, env=env))
        return json.loads(got.stdout)["changes"][0]["after"]["source"]

    assert source([]) == "data-env.csv"
    assert source(["--var-file", str(tmp_path / "v.yaml")]) == "data-file.csv"
    assert source(["--var-file", str(tmp_path / "v.yaml"), "--var", "suffix=cli"]) == \
        "data-cli.csv"


def test_failed_apply_exits_1_with_a_summary(null_stack, run_mlform):
    stack = null_stack(SPEC.replace("  null: {}", "  null: {fail: [data]}"))
    got = run_mlform(["apply", "--auto-approve"], stack)
    assert got.returncode == 1
    assert "finished with errors: 0 added, 0 changed, 0 destroyed; 1 failed, 1 skipped" \
        in got.stdout
    assert "error: data failed: injected failure creating 'data'" in got.stderr
    assert "train: skipped because 'data' failed" in got.stderr


def test_plan_refresh_false_does_not_notice_deletions(stack, run_mlform):
    _ok(run_mlform(["apply", "--auto-approve"], stack))
    for f in (stack / ".mlform" / "null").glob("*.json"):
        f.unlink()
    assert run_mlform(["plan", "--detailed-exitcode", "--refresh=false"], stack).returncode == 0
    assert run_mlform(["plan", "--detailed-exitcode"], stack).returncode == 2


def test_a_new_output_alone_is_a_change_that_apply_records(stack, run_mlform):
    _ok(run_mlform(["apply", "--auto-approve"], stack))
    spec = stack / "mlform.yaml"
    spec.write_text(spec.read_text() + '  data_uri: {value: "${data.uri}"}\n')
    got = run_mlform(["plan", "--detailed-exitcode", "--no-color"], stack)
    assert got.returncode == 2, got.stderr
    assert "Changes to outputs:\n  + data_uri = " in got.stdout
    assert "Plan: 0 to add, 0 to change, 0 to destroy." in got.stdout
    _ok(run_mlform(["apply", "--auto-approve"], stack))
    assert _ok(run_mlform(["output", "data_uri", "--raw"], stack)).stdout.startswith("null://")
    assert _ok(run_mlform(["plan", "--detailed-exitcode"], stack)).returncode == 0
