"""Planning against the null provider: every action, its reasons, targets and lifecycle."""

from __future__ import annotations

import pytest
from mlform.engine.apply.applier import Applier
from mlform.engine.diagnostics import MlformError
from mlform.engine.plan.model import Action
from mlform.engine.plan.planner import PlanOptions, _short_change, make_plan
from mlform.engine.session import Options, Session

SPEC = """\
version: 1
stack: plans
providers:
  null: {}
resources:
  data:
    type: dataset
    source: data.csv
    provider_options: {null: {replace_on: [format]}}
  train:
    type: training_job
    dataset: ${data.uri}
    algorithm: mlp_classifier
    target: y
    hyperparameters: {epochs: 1}
  m:
    type: model
    artifact: ${train.artifact}
  other:
    type: dataset
    source: other.csv
"""


class Stack:
    """A stack directory driven through the engine in-process, as the commands do."""

    def __init__(self, directory):
        self.dir = directory

    def write(self, text: str) -> None:
        (self.dir / "mlform.yaml").write_text(text)

    def edit(self, old: str, new: str) -> None:
        text = (self.dir / "mlform.yaml").read_text()
        assert old in text
        self.write(text.replace(old, new, 1))

    def plan(self, **options):
        session = Session(Options(stack_dir=self.dir), "plan")
        try:
            return make_plan(session.stack, session.read_state(), session.variables,
                             session.providers, PlanOptions(**options))
        finally:
            session.close()

    def apply(self, **options):
        session = Session(Options(stack_dir=self.dir), "apply")
        try:
            state = session.read_state()
            plan = make_plan(session.stack, state, session.variables, session.providers,
                             PlanOptions(**options))
            result = Applier(session.stack, state, session.variables, session.providers,
                             session.backend).apply(plan)
            assert result.ok, result.failed
            return result
        finally:
            session.close()

    def null_files(self) -> set[str]:
        return {p.name for p in (self.dir / ".mlform" / "null").glob("*.json")}


@pytest.fixture
def stack(null_stack):
    return Stack(null_stack(SPEC))


def _actions(plan) -> dict[str, Action]:
    return {c.name: c.action for c in plan.changes}


def test_new_stack_plans_creates_in_dependency_order(stack):
    plan = stack.plan()
    assert _actions(plan) == dict.fromkeys(["data", "train", "m", "other"], Action.CREATE)
    order = [c.name for c in plan.changes]
    assert order.index("data") < order.index("train") < order.index("m")
    assert plan.change_for("data").reasons == ("not yet created",)
    assert plan.counts() == {"add": 4, "change": 0, "destroy": 0, "move": 0}


def test_applied_stack_plans_no_changes(stack):
    stack.apply()
    plan = stack.plan()
    assert not plan.has_changes()
    assert set(_actions(plan).values()) == {Action.NOOP}


def test_spec_change_updates_and_names_the_upstream_cause(stack):
    stack.apply()
    stack.edit("target: y", "target: label")
    plan = stack.plan()
    assert _actions(plan) == {"data": Action.NOOP, "train": Action.UPDATE, "m": Action.UPDATE,
                              "other": Action.NOOP}
    train = plan.change_for("train")
    assert train.reasons == ("target changed in the spec: y -> label",)
    assert [(a.path, a.before, a.after) for a in train.attributes] == [("target", "y", "label")]
    (reason,) = plan.change_for("m").reasons
    assert reason.startswith("training_job train changed: artifact ")
    assert reason.endswith(" -> (known after apply), so m must update")


def test_upstream_change_reruns_a_training_job(stack):
    stack.apply()
    stack.edit("source: data.csv", "source: data-v2.csv")
    reasons = stack.plan().change_for("train").reasons
    assert len(reasons) == 1
    assert reasons[0].startswith("dataset data changed: uri ")
    assert reasons[0].endswith(", so train must re-run")


def test_replace_on_attribute_plans_delete_then_create(stack):
    stack.apply()
    stack.edit("source: data.csv", "source: data.csv\n    format: parquet")
    plan = stack.plan()
    data = plan.change_for("data")
    assert data.action is Action.DELETE_CREATE and data.action.is_replace
    assert data.replace_paths == ("format",)
    assert data.reasons == ("format forces replacement in the spec: (unset) -> parquet "
                            "(format cannot change in place)",)
    assert plan.counts() == {"add": 1, "change": 2, "destroy": 1, "move": 0}


def test_create_before_destroy_creates_the_new_one_first(stack):
    stack.apply()
    before = stack.null_files()
    stack.edit("replace_on: [format]}}", "replace_on: [format]}}\n"
               "    lifecycle: {create_before_destroy: true}")
    stack.edit("source: data.csv", "source: data.csv\n    format: parquet")
    assert stack.plan().change_for("data").action is Action.CREATE_DELETE
    stack.apply()
    after = stack.null_files()
    assert len(after) == len(before)  # the old one is gone, the new one took its place
    assert not stack.plan().has_changes()


def test_prevent_destroy_blocks_a_replacement(stack):
    stack.apply()
    stack.edit("replace_on: [format]}}", "replace_on: [format]}}\n"
               "    lifecycle: {prevent_destroy: true}")
    stack.edit("source: data.csv", "source: data.csv\n    format: parquet")
    with pytest.raises(MlformError) as exc:
        stack.plan()
    d = exc.value.diagnostics[0]
    assert d.summary == "'data' must be replaced, but lifecycle.prevent_destroy is set"
    assert "forced by: format" in d.detail and str(d.location).endswith("/mlform.yaml:11:34")


def test_prevent_destroy_blocks_destroy(stack):
    stack.edit("source: other.csv", "source: other.csv\n    lifecycle: {prevent_destroy: true}")
    stack.apply()
    with pytest.raises(MlformError, match="'other' has lifecycle.prevent_destroy set"):
        stack.plan(destroy=True)
    plan = stack.plan(destroy=True, targets=("m",))  # leaving it out with --target works
    assert [c.name for c in plan.changes] == ["m"]


def test_ignore_changes_suppresses_an_attribute(stack):
    stack.edit("hyperparameters: {epochs: 1}",
               "hyperparameters: {epochs: 1}\n    lifecycle: {ignore_changes: [hyperparameters]}")
    stack.apply()
    stack.edit("hyperparameters: {epochs: 1}", "hyperparameters: {epochs: 9}")
    assert not stack.plan().has_changes()
    stack.edit("target: y", "target: z")  # other attributes still count
    assert [a.path for a in stack.plan().change_for("train").attributes] == ["target"]


def test_nested_ignore_changes_keeps_siblings(stack):
    stack.edit("hyperparameters: {epochs: 1}",
               "hyperparameters: {epochs: 1, lr: 1}\n"
               "    lifecycle: {ignore_changes: [hyperparameters.epochs]}")
    stack.apply()
    stack.edit("{epochs: 1, lr: 1}", "{epochs: 5, lr: 2}")
    paths = [a.path for a in stack.plan().change_for("train").attributes]
    assert paths == ["hyperparameters.lr"]


def test_removed_resources_are_deleted_dependents_first(stack):
    stack.apply()
    stack.write(SPEC.split("  train:")[0] + "  other:\n    type: dataset\n    source: other.csv\n")
    plan = stack.plan()
    deletes = [c.name for c in plan.changes if c.action is Action.DELETE]
    assert deletes == ["m", "train"]
    assert plan.change_for("m").reasons == ("no longer in the spec",)
    stack.apply()
    assert len(stack.null_files()) == 2


def test_target_limits_to_it_and_its_dependencies(stack):
    plan = stack.plan(targets=("train",))
    assert {c.name for c in plan.changes} == {"data", "train"}
    stack.apply(targets=("train",))
    assert {c.name for c in stack.plan().actionable()} == {"m", "other"}


def test_unknown_target_is_refused_with_a_suggestion(stack):
    with pytest.raises(MlformError) as exc:
        stack.plan(targets=("trian",))
    assert exc.value.diagnostics[0].summary == "--target names unknown resource 'trian'"
    assert exc.value.diagnostics[0].help == "did you mean 'train'?"


def test_requested_replacement(stack):
    stack.apply()
    plan = stack.plan(replace=("other",))
    assert plan.change_for("other").action is Action.DELETE_CREATE
    assert plan.change_for("other").reasons[0] == "replacement requested"


def test_destroy_deletes_everything_dependents_first(stack):
    stack.apply()
    plan = stack.plan(destroy=True)
    order = [c.name for c in plan.changes]
    assert set(order) == {"data", "train", "m", "other"}
    assert order.index("m") < order.index("train") < order.index("data")
    assert all(c.action is Action.DELETE for c in plan.changes)
    stack.apply(destroy=True)
    assert stack.null_files() == set()


@pytest.mark.parametrize(("before", "after", "expected"), [
    ("s3://b/mlform/s/datasets/d/29a106d38861/data.csv",
     "s3://b/mlform/s/datasets/d/77905c57b2dd/data.csv",
     "29a106d38861/data.csv -> 77905c57b2dd/data.csv"),
    ("null://data/0123456789abcdef", "null://data/fedcba9876543210",
     "0123456789abcdef -> fedcba9876543210"),
    ("s3://b/k/" + "a" * 64 + "/data.csv", "s3://b/k/" + "b" * 64 + "/data.csv",
     "aaaaaaaaaaaa/data.csv -> bbbbbbbbbbbb/data.csv"),
    ("s3://x", "local://s3://x", "s3://x -> local://s3://x"),
], ids=["same-file-name-under-new-versions", "last-parts-differ",
        "long-versions-cut-where-they-still-differ", "one-uri-ends-with-the-other"])
def test_a_reason_tells_two_uris_apart(before, after, expected):
    assert _short_change(before, after) == expected
