"""Moves in the engine, in-process, on a test provider that can move (the null provider
with the move verbs): when the plan moves rather than replaces, what apply records, a
corrupted copy refused, and an interrupted move resumed from its deposed entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlform.engine import registry
from mlform.engine.apply.applier import Applier
from mlform.engine.diagnostics import MlformError
from mlform.engine.moves.verbs import ExportResponse
from mlform.engine.plan.model import Action
from mlform.engine.plan.planner import PlanOptions, make_plan
from mlform.engine.provider import ApplyResponse
from mlform.engine.session import Options, Session
from mlform.ml import bundle as bundles
from mlform.providers.null.provider import NullProvider

SPEC = """\
version: 1
stack: moves
providers:
  old: {{type: movable}}
  new: {{type: {new_type}, corrupt: {corrupt}}}
resources:
  data:
    type: dataset
    provider: {provider}
    source: data.csv
  train:
    type: training_job
    provider: {provider}
    dataset: ${{data.uri}}
    algorithm: mlp_classifier
    target: y
    hyperparameters: {{epochs: {epochs}}}
  m:
    type: model
    provider: {provider}
    artifact: ${{train.artifact}}
"""
MOVABLE = frozenset({"dataset", "training_job", "model"})


class MovableNull(NullProvider):
    """The null provider with `export` and `import_`: a bundle of the record's outputs,
    copied into its directory and verified there (`corrupt: true` flips a byte)."""

    def can_move(self, rtype: str) -> bool:
        return rtype in MOVABLE

    def export(self, req):
        files = {"record.json": json.dumps(req.outputs, sort_keys=True).encode()}
        if req.staging is None:
            return ExportResponse(files=bundles.listing(files))
        made = bundles.stage(req.staging, req.resource.type, req.resource.name,
                             self.ctx.provider_name, files, req.outputs)
        return ExportResponse(files=tuple((f.path, f.size) for f in made.files),
                              bundle=made.directory)

    def import_(self, req, progress):
        bundle = bundles.load(req.bundle)
        copy = self.ctx.data_dir / "copies" / req.resource.name / "record.json"
        copy.parent.mkdir(parents=True, exist_ok=True)
        data = bundle.path("record.json").read_bytes()
        copy.write_bytes(data[:-1] + b"!" if self.ctx.config.get("corrupt") else data)
        try:
            bundles.verify_copy(bundle, lambda rel: copy, str(copy))
        except bundles.BundleError as e:
            return ApplyResponse(error=str(e))
        rid = "moved-" + req.resource.name
        self._save(rid, {"inputs": {}, "outputs": bundle.outputs})
        return ApplyResponse(id=rid, outputs=bundle.outputs)


@pytest.fixture(autouse=True)
def movable(monkeypatch):
    real = registry.provider_class
    monkeypatch.setattr(registry, "provider_class",
                        lambda ptype: MovableNull if ptype == "movable" else real(ptype))


class Stack:
    def __init__(self, directory: Path):
        self.dir = directory

    def write(self, provider: str = "old", epochs: int = 1, new_type: str = "movable",
              corrupt: bool = False, extra: str = "") -> None:
        (self.dir / "mlform.yaml").write_text(SPEC.format(
            provider=provider, epochs=epochs, new_type=new_type,
            corrupt=str(corrupt).lower()) + extra)

    def _session(self, command: str) -> Session:
        return Session(Options(stack_dir=self.dir), command)

    def plan(self, **options):
        session = self._session("plan")
        try:
            return make_plan(session.stack, session.read_state(), session.variables,
                             session.providers, PlanOptions(**options))
        finally:
            session.close()

    def apply(self, **options):
        session = self._session("apply")
        try:
            state = session.read_state()
            plan = make_plan(session.stack, state, session.variables, session.providers,
                             PlanOptions(**options))
            return Applier(session.stack, state, session.variables, session.providers,
                           session.backend).apply(plan)
        finally:
            session.close()

    def state(self):
        session = self._session("plan")
        try:
            return session.read_state()
        finally:
            session.close()


@pytest.fixture
def stack(null_stack) -> Stack:
    s = Stack(null_stack(SPEC.format(provider="old", epochs=1, new_type="movable",
                                     corrupt="false"), **{"data.csv": "x,y\n1,0\n"}))
    assert s.apply().ok
    return s


def actions(plan) -> dict[str, Action]:
    return {c.name: c.action for c in plan.changes if c.action is not Action.NOOP}


@pytest.mark.parametrize(("why", "edit", "options", "expected"), [
    ("both providers move every type: all three move",
     {"provider": "new"}, {}, dict.fromkeys(("data", "train", "m"), Action.MOVE)),
    ("--replace asks for a re-creation: a replacement, its users moving",
     {"provider": "new"}, {"replace": ("train",)},
     {"data": Action.MOVE, "train": Action.CREATE_DELETE, "m": Action.CREATE_DELETE}),
    ("a training job whose settings changed too re-runs: replaced, not moved",
     {"provider": "new", "epochs": 2}, {},
     {"data": Action.MOVE, "train": Action.CREATE_DELETE, "m": Action.CREATE_DELETE}),
    ("a target provider that cannot move: replacements as before",
     {"provider": "new", "new_type": '"null"'}, {},
     dict.fromkeys(("data", "train", "m"), Action.CREATE_DELETE)),
])
def test_a_provider_change_moves_unless_something_else_changed(stack, why, edit, options,
                                                               expected):
    stack.write(**edit)
    assert actions(stack.plan(**options)) == expected, why


def test_the_plan_says_where_from_what_is_copied_and_why(stack):
    stack.write(provider="new")
    plan = stack.plan()
    train = plan.change_for("train")
    assert (train.moved_from, train.provider, train.move_source) == ("old", "new", "train")
    assert train.reasons[0] == "moves from provider 'old' to 'new': copied, not re-run"
    assert train.reasons[1].startswith("copies 1 file(s), ")
    assert train.copies[0][0] == "record.json" and train.copies[0][1] > 0
    assert plan.counts() == {"add": 0, "change": 0, "destroy": 0, "move": 3}
    assert not train.action.is_replace


def test_a_move_records_the_new_provider_and_deletes_the_old_object_after(stack):
    before = stack.state().resources
    stack.write(provider="new")
    result = stack.apply()
    assert result.ok, result.failed
    after = result.state.resources
    assert set(after) == {"data", "train", "m"}
    assert {r.provider for r in after.values()} == {"new"}
    assert after["train"].outputs == before["train"].outputs  # carried, not re-made
    assert [e.action for e in result.effects].count("move") == 3
    assert [e.action for e in result.effects].count("delete") == 3
    old_files = list((stack.dir / ".mlform" / "old").glob("*.json"))
    assert old_files == []
    assert not stack.plan().has_changes()


def test_a_corrupted_copy_is_refused_and_the_old_object_stays(stack):
    before = stack.state().resources
    stack.write(provider="new", corrupt=True)
    result = stack.apply()
    assert set(result.failed) == {"data"}
    assert "record.json of 'data' differs in" in result.failed["data"]
    assert "the manifest says" in result.failed["data"]
    after = result.state.resources
    assert set(after) == {"data", "train", "m"}
    assert after["data"].provider == "old" and after["data"].id == before["data"].id
    assert actions(stack.plan())["data"] is Action.MOVE  # the next apply tries again


def test_an_interrupted_move_is_resumed_from_its_deposed_entry(stack):
    """A kill after the old object was set aside and before the import was recorded
    leaves `train~deposed` and no `train`: the next plan moves from the deposed entry."""
    stack.write(provider="new")
    state = stack.state()
    train = state.resources["train"]
    session = Session(Options(stack_dir=stack.dir), "apply")
    try:
        resources = {k: v for k, v in state.resources.items() if k != "train"}
        resources["train~deposed"] = train.with_(name="train~deposed")
        session.backend.write(state.next_serial(resources=resources))
    finally:
        session.close()
    plan = stack.plan()
    change = plan.change_for("train")
    assert change.action is Action.MOVE and change.move_source == "train~deposed"
    assert any("resumes an interrupted move" in r for r in change.reasons)
    assert plan.change_for("train~deposed").action is Action.DELETE
    result = stack.apply()
    assert result.ok, result.failed
    assert set(result.state.resources) == {"data", "train", "m"}
    assert result.state.resources["train"].provider == "new"


def test_a_model_asking_for_its_gates_again_still_moves(stack):
    stack.write(provider="new", extra="    on_move: {rerun_gates: true}\n")
    m = stack.plan().change_for("m")
    assert m.action is Action.MOVE
    assert m.reasons[0] == ("moves from provider 'old' to 'new': registered on the target "
                            "from the copied artifact; its gates run again there")


def test_prevent_destroy_refuses_a_move(stack):
    stack.write(provider="new", extra="    lifecycle: {prevent_destroy: true}\n")
    with pytest.raises(MlformError) as exc:
        stack.plan()
    assert "'m' moves from provider 'old' to 'new', which deletes the old object, but " \
           "lifecycle.prevent_destroy is set" in str(exc.value)


ENDPOINT = """\
  serve:
    type: endpoint
    provider: {provider}
    variants:
      champion: {{model: "${{m.uri}}", weight: 100}}
"""


def test_an_endpoint_is_replaced_and_the_old_model_goes_after_the_old_endpoint(stack):
    """Endpoints are not moved: the new one is created from the moved model, and the old
    model is deleted only once the old endpoint that served it is gone."""
    stack.write(extra=ENDPOINT.format(provider="old"))
    assert stack.apply().ok
    stack.write(provider="new", extra=ENDPOINT.format(provider="new"))
    plan = stack.plan()
    assert actions(plan) == {**dict.fromkeys(("data", "train", "m"), Action.MOVE),
                             "serve": Action.CREATE_DELETE}
    assert plan.counts() == {"add": 1, "change": 0, "destroy": 1, "move": 3}
    result = stack.apply()
    assert result.ok, result.failed
    order = [(e.resource, e.action, e.provider) for e in result.effects]
    assert order.index(("serve", "create", "new")) < order.index(("serve", "delete", "old"))
    assert order.index(("serve", "delete", "old")) < order.index(("m", "delete", "old"))
    assert order.index(("m", "move", "new")) < order.index(("serve", "create", "new"))
    assert {r.provider for r in result.state.resources.values()} == {"new"}


def test_a_saved_plan_keeps_its_moves(stack):
    from mlform.engine.plan.planfile import from_document, to_document

    stack.write(provider="new")
    plan = stack.plan()
    doc = json.loads(json.dumps(to_document(plan, "salt")))
    train = next(c for c in doc["changes"] if c["name"] == "train")
    assert (train["action"], train["moved_from"], train["move_source"]) == \
        ("move", "old", "train")
    assert train["copy_size"] == sum(f["size"] for f in train["copies"]) > 0
    back = from_document(doc).change_for("train")
    assert (back.action, back.moved_from, back.move_source, back.copies) == \
        (Action.MOVE, "old", "train", plan.change_for("train").copies)
