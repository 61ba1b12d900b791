"""Replacements never leave a user with less than before: the old object goes last,
through the provider that made it, and every delete is counted."""

from __future__ import annotations

from mlform.engine.apply.applier import Applier
from mlform.engine.plan.model import Action
from mlform.engine.plan.planner import PlanOptions, make_plan
from mlform.engine.session import Options, Session

TWO_PROVIDERS = """\
version: 1
stack: moves
providers:
  one: {type: "null"}
  two: {type: "null"}
resources:
  data:
    type: dataset
    source: a.csv
    provider: PROVIDER
  model:
    type: model
    artifact: ${data.uri}
    provider: one
    provider_options: {null: {replace_on: [artifact]}}
  ep:
    type: endpoint
    variants: {v: {model: "${model.id}"}}
    provider: one
"""


def _run(directory, order: list[str] | None = None, **options):
    session = Session(Options(stack_dir=directory), "apply")
    try:
        state = session.read_state()
        plan = make_plan(session.stack, state, session.variables, session.providers,
                         PlanOptions(**options))

        class Record:
            def started(self, name, action):
                if order is not None:
                    order.append(f"{action} {name}")

            def __getattr__(self, name):
                return lambda *a, **k: None

        result = Applier(session.stack, state, session.variables, session.providers,
                         session.backend, Record(), parallelism=4).apply(plan)
        return plan, result
    finally:
        session.close()


def _files(directory, provider):
    return sorted(p.stem for p in (directory / ".mlform" / provider).glob("*.json"))


def test_a_resource_moved_to_another_provider_is_deleted_where_it_was(null_stack):
    stack = null_stack(TWO_PROVIDERS.replace("PROVIDER", "one"))
    _, first = _run(stack)
    assert first.ok
    old_id = first.state.resources["data"].id
    assert old_id in _files(stack, "one")

    (stack / "mlform.yaml").write_text(TWO_PROVIDERS.replace("PROVIDER", "two"))
    plan, moved = _run(stack)
    assert moved.ok, moved.failed
    assert plan.change_for("data").action is Action.CREATE_DELETE  # the default for a move
    assert old_id not in _files(stack, "one"), "the old copy was left behind"
    assert moved.state.resources["data"].id in _files(stack, "two")
    deletes = [(e.resource, e.provider) for e in moved.effects if e.action == "delete"]
    assert ("data", "one") in deletes


def test_a_replaced_model_goes_only_after_the_endpoint_moved_to_the_new_one(null_stack):
    stack = null_stack(TWO_PROVIDERS.replace("PROVIDER", "one"))
    assert _run(stack)[1].ok
    (stack / "mlform.yaml").write_text(
        TWO_PROVIDERS.replace("PROVIDER", "one").replace("source: a.csv", "source: b.csv"))
    order: list[str] = []
    plan, result = _run(stack, order)
    assert result.ok, result.failed
    assert plan.change_for("model").action is Action.CREATE_DELETE  # the default for models
    assert order.index("create-then-delete model") < order.index("update ep") \
        < order.index("delete model~deposed")
    assert "model~deposed" not in result.state.resources
    assert [e.action for e in result.effects if e.resource == "model"] == ["create", "delete"]


def test_a_failed_replacement_create_keeps_the_old_object_in_state(null_stack):
    spec = TWO_PROVIDERS.replace("PROVIDER", "one")
    stack = null_stack(spec)
    first = _run(stack)[1]
    old = first.state.resources["model"]
    (stack / "mlform.yaml").write_text(
        spec.replace("source: a.csv", "source: b.csv").replace(
            'one: {type: "null"}', 'one: {type: "null", fail: [model]}'))
    _, result = _run(stack)
    assert set(result.failed) == {"model"}
    kept = result.state.resources["model"]
    assert (kept.id, kept.status) == (old.id, "ready")
    assert "model~deposed" not in result.state.resources
    assert old.id in _files(stack, "one")
    assert not [e for e in result.effects if e.action == "delete"]


def test_a_deposed_object_left_by_a_failed_dependent_is_deleted_by_a_later_apply(null_stack):
    spec = TWO_PROVIDERS.replace("PROVIDER", "one")
    stack = null_stack(spec)
    old = _run(stack)[1].state.resources["model"]
    failing = spec.replace("source: a.csv", "source: b.csv").replace(
        'one: {type: "null"}', 'one: {type: "null", fail: [ep]}')
    (stack / "mlform.yaml").write_text(failing)
    _, result = _run(stack)
    assert set(result.failed) == {"ep"}
    assert "model~deposed" in result.skipped
    assert result.state.resources["model~deposed"].id == old.id
    assert old.id in _files(stack, "one"), "deleted while the endpoint still used it"

    (stack / "mlform.yaml").write_text(failing.replace("fail: [ep]", "fail: []"))
    order: list[str] = []
    plan, healed = _run(stack, order)
    assert healed.ok, healed.failed
    assert "the old object of a replacement" in plan.change_for("model~deposed").reasons[0]
    assert order.index("update ep") < order.index("delete model~deposed")
    assert old.id not in _files(stack, "one")
