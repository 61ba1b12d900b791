"""`mlform audit verify` over a real history, and `mlform drift` after an outside deletion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from null_pipeline import pipeline_spec

pytestmark = pytest.mark.e2e

SPEC = pipeline_spec("history")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, run_mlform, stack_writer):
    """A stack with five audited commands behind it; tests work on copies."""
    stack = stack_writer(tmp_path_factory.mktemp("history") / "stack", SPEC)
    for args in (["apply", "--auto-approve"], ["state", "rm", "train"],
                 ["apply", "--auto-approve"], ["destroy", "--auto-approve"],
                 ["apply", "--auto-approve"]):
        assert run_mlform(args, stack).returncode == 0, args
    return stack


@pytest.fixture
def history(recorded, tmp_path):
    return Path(shutil.copytree(recorded, tmp_path / "copy"))


def test_audit_verify_passes_on_an_untouched_log(history, run_mlform):
    got = run_mlform(["audit", "verify"], history)
    assert got.returncode == 0, got.stderr
    assert "5 entries, hash chain verified" in got.stdout
    commands = [json.loads(line)["command"]
                for line in (history / ".mlform" / "audit.jsonl").read_text().splitlines()]
    assert commands == ["apply", "state rm", "apply", "destroy", "apply"]


@pytest.mark.parametrize("edit", [
    pytest.param(lambda lines: lines[:1] + [lines[1].replace('"ok"', '"failed"')] + lines[2:],
                 id="edited-entry"),
    pytest.param(lambda lines: lines[:2] + lines[3:], id="removed-entry"),
    pytest.param(lambda lines: lines[:-1], id="removed-last-entry"),
])
def test_audit_verify_detects_tampering(history, run_mlform, edit):
    log = history / ".mlform" / "audit.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(edit(lines)) + "\n")
    got = run_mlform(["audit", "verify"], history)
    assert got.returncode == 1, got.stdout
    assert "Traceback" not in got.stderr


def test_drift_reports_a_deleted_resource_and_apply_restores_it(null_stack, run_mlform):
    stack = null_stack(SPEC)
    assert run_mlform(["apply", "--auto-approve"], stack).returncode == 0
    assert run_mlform(["drift"], stack).returncode == 0
    data_id = json.loads(run_mlform(["state", "show", "data"], stack).stdout)["id"]
    (stack / ".mlform" / "null" / f"{data_id}.json").unlink()
    got = run_mlform(["drift"], stack)
    assert got.returncode == 2, got.stderr
    assert "dataset.data: deleted outside mlform" in got.stdout
    report = json.loads(run_mlform(["drift", "--format", "json"], stack).stdout)
    assert "deleted_outside" in json.dumps(report)
    assert run_mlform(["apply", "--auto-approve"], stack).returncode == 0
    assert (stack / ".mlform" / "null" / f"{data_id}.json").exists()
    assert run_mlform(["drift"], stack).returncode == 0


def test_drift_reports_an_unapplied_spec_change(null_stack, run_mlform):
    stack = null_stack(SPEC)
    assert run_mlform(["apply", "--auto-approve"], stack).returncode == 0
    (stack / "mlform.yaml").write_text(SPEC.replace("target: y", "target: z"))
    got = run_mlform(["drift"], stack)
    assert got.returncode == 2 and "spec changed but not applied" in got.stdout
