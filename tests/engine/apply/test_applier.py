"""Carrying out plans: failures, replacements, the journal, and adopting interrupted creates."""

from __future__ import annotations

import json

import pytest
from mlform.engine.apply.applier import Applier, idempotency_key
from mlform.engine.plan.planner import PlanOptions, make_plan
from mlform.engine.provider import CreateRequest, Progress
from mlform.engine.providerset import ref
from mlform.engine.refresh import refresh
from mlform.engine.session import Options, Session
from mlform.engine.state.backend import JournalEntry
from mlform.engine.state.model import ResourceState
from mlform.engine.state.statefile import resource_to_json

SPEC = """\
version: 1
stack: applies
providers:
  null: {fail: [FAILING]}
resources:
  a:
    type: dataset
    source: a.csv
  b:
    type: training_job
    dataset: ${a.uri}
    algorithm: mlp_classifier
    target: y
  c:
    type: model
    artifact: ${b.artifact}
  lone:
    type: dataset
    source: lone.csv
"""


def _apply(directory, **options):
    session = Session(Options(stack_dir=directory), "apply")
    try:
        state = session.read_state()
        if options.pop("refresh", False):
            state = refresh(state, session.providers).state
        plan = make_plan(session.stack, state, session.variables, session.providers,
                         PlanOptions(**options))
        return Applier(session.stack, state, session.variables, session.providers,
                       session.backend, parallelism=4).apply(plan)
    finally:
        session.close()


def _state(directory):
    session = Session(Options(stack_dir=directory), "show")
    return session.read_state()


def test_a_failure_stops_its_dependents_and_keeps_the_rest(null_stack):
    stack = null_stack(SPEC.replace("FAILING", "b"))
    result = _apply(stack)
    assert not result.ok
    assert set(result.failed) == {"b"} and "injected failure" in result.failed["b"]
    assert result.skipped == {"c": "'b' failed"}
    assert result.done == {"a": "create", "lone": "create"}
    state = _state(stack)
    assert set(state.resources) == {"a", "lone"}  # no pending record of the failed create
    assert state.serial == 1


def test_fixed_failure_converges_on_the_next_apply(null_stack):
    stack = null_stack(SPEC.replace("FAILING", "b"))
    _apply(stack)
    (stack / "mlform.yaml").write_text(SPEC.replace("FAILING", "nothing"))
    result = _apply(stack)
    assert result.ok and result.done == {"b": "create", "c": "create"}


def test_failed_create_before_destroy_keeps_the_old_resource(null_stack):
    spec = SPEC.replace("FAILING", "nothing").replace(
        "    source: lone.csv",
        "    source: lone.csv\n    lifecycle: {create_before_destroy: true}\n"
        "    provider_options: {null: {replace_on: [source]}}")
    stack = null_stack(spec)
    assert _apply(stack).ok
    old = _state(stack).resources["lone"]
    (stack / "mlform.yaml").write_text(spec.replace("lone.csv", "lone2.csv").replace(
        "nothing", "lone"))
    result = _apply(stack)
    assert set(result.failed) == {"lone"}
    kept = _state(stack).resources["lone"]
    assert (kept.id, kept.status, kept.inputs["source"]) == (old.id, "ready", "lone.csv")
    assert (stack / ".mlform" / "null" / f"{old.id}.json").exists()


def test_failed_update_keeps_the_recorded_inputs(null_stack):
    stack = null_stack(SPEC.replace("FAILING", "nothing"))
    _apply(stack)
    (stack / "mlform.yaml").write_text(SPEC.replace("FAILING", "b").replace("target: y",
                                                                             "target: z"))
    result = _apply(stack)
    assert set(result.failed) == {"b"}
    assert _state(stack).resources["b"].inputs["target"] == "y"


def test_create_interrupted_after_the_remote_call_is_adopted_not_duplicated(null_stack):
    # What a kill between the provider's create and the journal's "done" leaves behind.
    stack = null_stack(SPEC.replace("FAILING", "nothing"))
    session = Session(Options(stack_dir=stack), "apply")
    state = session.read_state()
    inputs = {"source": "lone.csv"}
    key = idempotency_key(state.stack, "lone", inputs, state.salt)
    made = session.providers.get("null").create(
        CreateRequest(resource=ref("lone", "dataset"), inputs=inputs, idempotency_key=key),
        Progress(lambda *_: None))
    pending = ResourceState(name="lone", type="dataset", provider="null", id=None,
                            inputs=inputs, outputs={}, dependencies=(), status="pending",
                            idempotency_key=key, provider_type="null")
    session.backend.journal_append(JournalEntry(
        kind="intent", name="lone", lineage=state.lineage, base_serial=state.serial,
        resource=resource_to_json(pending, state.salt)))
    session.close()

    result = _apply(stack, refresh=True)
    assert result.ok and "lone" not in result.done
    assert _state(stack).resources["lone"].id == made.id
    assert len(list((stack / ".mlform" / "null").glob("*.json"))) == 4


def test_journal_is_compacted_after_a_large_apply(null_stack):
    names = [f"r{i:04d}" for i in range(2000)]
    spec = "version: 1\nstack: big\nproviders:\n  null: {latency: 0, store: false}\n" \
           "resources:\n" + "".join(f"  {n}:\n    type: dataset\n    source: {n}.csv\n"
                                    for n in names)
    stack = null_stack(spec)
    result = _apply(stack)
    assert result.ok and len(result.done) == 2000
    doc = json.loads((stack / ".mlform" / "state.json").read_text())
    assert sorted(doc["resources"]) == names
    journal = stack / ".mlform" / "state.journal"
    assert not journal.exists() or journal.stat().st_size == 0


@pytest.mark.parametrize("parallelism", [1, 8])
def test_dependencies_are_created_before_dependents(null_stack, parallelism):
    stack = null_stack(SPEC.replace("FAILING", "nothing"))
    session = Session(Options(stack_dir=stack), "apply")
    state = session.read_state()
    plan = make_plan(session.stack, state, session.variables, session.providers)
    order = []

    class Record:
        def started(self, name, action):
            order.append(name)

        def __getattr__(self, name):
            return lambda *a, **k: None

    result = Applier(session.stack, state, session.variables, session.providers,
                     session.backend, Record(), parallelism).apply(plan)
    session.close()
    assert result.ok
    assert order.index("a") < order.index("b") < order.index("c")
    c = result.state.resources["c"]
    assert c.inputs["artifact"] == result.state.resources["b"].outputs["artifact"]
    assert c.dependencies == ("b",)
