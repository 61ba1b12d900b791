"""`mlform state list|show|rm|mv` and `mlform import`, each audited."""

from __future__ import annotations

import json

import pytest
from null_pipeline import pipeline_spec

pytestmark = pytest.mark.e2e

SPEC = pipeline_spec("states")


@pytest.fixture
def applied(null_stack, run_mlform):
    stack = null_stack(SPEC)
    assert run_mlform(["apply", "--auto-approve"], stack).returncode == 0
    return stack


def _audit(stack) -> list[dict]:
    lines = (stack / ".mlform" / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_state_list_and_show(applied, run_mlform):
    got = run_mlform(["state", "list"], applied)
    rows = [line.split("\t") for line in got.stdout.splitlines()]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("data", "dataset", "null", "ready"), ("train", "training_job", "null", "ready")]
    shown = json.loads(run_mlform(["state", "show", "train"], applied).stdout)
    assert shown["inputs"]["target"] == "y" and shown["id"] == rows[1][3]


def test_state_show_unknown_name_suggests(applied, run_mlform):
    got = run_mlform(["state", "show", "trian"], applied)
    assert got.returncode == 1
    assert "no resource 'trian' in state" in got.stderr and "did you mean 'train'" in got.stderr


def test_state_rm_forgets_without_destroying(applied, run_mlform):
    got = run_mlform(["state", "rm", "train"], applied)
    assert got.returncode == 0, got.stderr
    assert "Removed train from state" in got.stdout
    assert len(list((applied / ".mlform" / "null").glob("*.json"))) == 2  # still live
    assert [r.split("\t")[0] for r in run_mlform(["state", "list"], applied)
            .stdout.splitlines()] == ["data"]
    last = _audit(applied)[-1]
    assert (last["command"], last["changes"]) == \
        ("state rm", [{"resource": "train", "action": "forget"}])


def test_state_mv_renames_and_plan_follows(applied, run_mlform):
    (applied / "mlform.yaml").write_text(SPEC.replace("  data:", "  raw:")
                                         .replace("${data.uri}", "${raw.uri}"))
    got = run_mlform(["state", "mv", "data", "raw"], applied)
    assert got.returncode == 0, got.stderr
    assert run_mlform(["plan", "--detailed-exitcode"], applied).returncode == 0
    shown = json.loads(run_mlform(["state", "show", "train"], applied).stdout)
    assert shown["dependencies"] == ["raw"]
    assert _audit(applied)[-1]["command"] == "state mv"


def test_state_mv_onto_existing_is_refused(applied, run_mlform):
    got = run_mlform(["state", "mv", "data", "train"], applied)
    assert got.returncode == 1 and "'train' already exists in state" in got.stderr


def test_import_adopts_a_live_resource(applied, run_mlform):
    rid = json.loads(run_mlform(["state", "show", "train"], applied).stdout)["id"]
    assert run_mlform(["state", "rm", "train"], applied).returncode == 0
    got = run_mlform(["import", "train", rid], applied)
    assert got.returncode == 0, got.stderr
    assert f"Imported train ({rid})" in got.stdout
    assert run_mlform(["plan", "--detailed-exitcode"], applied).returncode == 0
    assert _audit(applied)[-1]["command"] == "import"


@pytest.mark.parametrize("args, message", [
    pytest.param(["import", "train", "null-0000"], "finds no training_job with id 'null-0000'",
                 id="unknown-id"),
    pytest.param(["import", "nope", "null-0000"], "no resource 'nope' in the spec",
                 id="not-in-spec"),
    pytest.param(["import", "data", "null-0000"], "'data' is already in state",
                 id="already-managed"),
])
def test_import_refusals(applied, run_mlform, args, message):
    assert run_mlform(["state", "rm", "train"], applied).returncode == 0
    got = run_mlform(args, applied)
    assert got.returncode == 1 and message in got.stderr and "help: " in got.stderr


def test_state_rm_takes_several_names_and_a_stack_dir(applied, run_mlform, tmp_path):
    got = run_mlform(["state", "rm", "data", "train", str(applied)], tmp_path)
    assert got.returncode == 0, got.stderr
    assert run_mlform(["state", "list"], applied).stdout == ""


def test_show_one_resource_names_it(applied, run_mlform):
    got = run_mlform(["show", "train"], applied)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("training_job.train  id=null-")
    assert '    target = "y"' in got.stdout
