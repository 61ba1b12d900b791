"""The plan document: round trip, secrets as digests, and refusing stale plan files."""

from __future__ import annotations

import json
import stat

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.plan import planfile
from mlform.engine.plan.model import Action, AttributeDiff, Plan, ResourceChange
from mlform.engine.values import Secret, StoredSecret, Unknown

SALT = "salt-1"


def _plan() -> Plan:
    change = ResourceChange(
        name="train", type="training_job", provider="null", action=Action.UPDATE,
        before={"target": "y", "token": Secret("old-hunter2")},
        after={"target": "z", "token": Secret("new-hunter2"), "data": Unknown("data.uri")},
        attributes=(AttributeDiff("target", "y", "z"),), reasons=("target changed",),
        planned_outputs={"artifact": Unknown("train.artifact"), "id": "null-1"},
        dependencies=("data",))
    return Plan(stack="s", lineage="L", serial=4, spec_digest="D", changes=(change,),
                outputs={"url": Secret("https://u:hunter2@x")}, targets=("train",))


def test_round_trip_keeps_everything_but_secret_plaintext():
    doc = planfile.to_document(_plan(), SALT, "V")
    back = planfile.from_document(json.loads(planfile.encode(doc)))
    (c,) = back.changes
    assert (back.stack, back.lineage, back.serial, back.spec_digest, back.targets) == \
        ("s", "L", 4, "D", ("train",))
    assert (c.action, c.reasons, c.dependencies) == (Action.UPDATE, ("target changed",),
                                                     ("data",))
    assert c.attributes == (AttributeDiff("target", "y", "z"),)
    assert c.after["data"] == Unknown("data.uri")
    assert isinstance(c.after["token"], StoredSecret)
    assert Secret("new-hunter2").matches(c.after["token"].digest)
    assert doc["summary"] == {"add": 0, "change": 1, "destroy": 0, "move": 0}
    assert doc["salt"] == SALT  # a plan made before any state exists can start it


def test_saved_plan_has_no_secret_and_is_private(tmp_path):
    path = tmp_path / "plan.json"
    planfile.save(path, planfile.to_document(_plan(), SALT, "V"))
    assert "hunter2" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert planfile.load(path)["serial"] == 4


def test_variables_digest_depends_on_values_and_salt():
    base = planfile.variables_digest({"a": 1, "t": Secret("x")}, SALT)
    assert base == planfile.variables_digest({"t": Secret("x"), "a": 1}, SALT)
    assert base != planfile.variables_digest({"a": 1, "t": Secret("y")}, SALT)
    assert base != planfile.variables_digest({"a": 1, "t": Secret("x")}, "other")


@pytest.mark.parametrize("content, message", [
    pytest.param(None, "plan file not found", id="missing"),
    pytest.param("{not json", "cannot read plan file", id="not-json"),
    pytest.param('{"format_version": 99, "changes": []}', "not an mlform plan file",
                 id="other-version"),
    pytest.param("[1, 2]", "not an mlform plan file", id="not-an-object"),
])
def test_unreadable_plan_files_are_refused(tmp_path, content, message):
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(MlformError, match=message) as exc:
        planfile.load(path)
    assert "mlform plan --out" in exc.value.diagnostics[0].help


@pytest.mark.parametrize("lineage, serial, spec, variables, message", [
    pytest.param("X", 4, "D", "V", "made for another state", id="other-lineage"),
    pytest.param("L", 5, "D", "V", "stale: it was made against state serial 4, and the state "
                 "is now at serial 5", id="newer-serial"),
    pytest.param("L", 4, "E", "V", "spec files changed", id="spec-changed"),
    pytest.param("L", 4, "D", "W", "other variable values", id="variables-changed"),
])
def test_stale_plans_are_refused(tmp_path, lineage, serial, spec, variables, message):
    doc = planfile.to_document(_plan(), SALT, "V")
    with pytest.raises(MlformError, match=message):
        planfile.check_current(doc, tmp_path / "p.json", lineage, serial, spec, variables)


def test_current_plan_is_accepted(tmp_path):
    doc = planfile.to_document(_plan(), SALT, "V")
    planfile.check_current(doc, tmp_path / "p.json", "L", 4, "D", "V")


def test_digest_is_stable_and_content_bound():
    doc = planfile.to_document(_plan(), SALT, "V")
    assert planfile.digest(doc) == planfile.digest(json.loads(planfile.encode(doc)))
    doc["serial"] = 5
    assert planfile.digest(doc) != planfile.digest(planfile.to_document(_plan(), SALT, "V"))
