"""The provider conformance kit: every case runs against every provider in `HARNESSES`
(harnesses.py), through the engine as `mlform apply` drives it. A provider that passes
keeps the contract of engine/provider.py; a new provider adds only its harness."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from harnesses import Harness
from mlform.engine.apply.applier import Applier, ApplyResult, idempotency_key
from mlform.engine.capabilities import produced
from mlform.engine.plan.model import Plan
from mlform.engine.plan.planner import PlanOptions, make_plan
from mlform.engine.provider import (
    CreateRequest,
    DeleteRequest,
    InvokeRequest,
    ObserveRequest,
    Progress,
    Provider,
    ResourceRef,
)
from mlform.engine.refresh import RefreshResult, refresh
from mlform.engine.session import Options, Session
from mlform.engine.spec.outputs import output_problems
from mlform.engine.state.backend import JournalEntry
from mlform.engine.state.model import ResourceState, State
from mlform.engine.state.statefile import resource_to_json

QUIET = Progress(lambda *_: None)


def _write(directory: Path, h: Harness) -> Path:
    spec = {"version": 1, "stack": "conformance", "providers": {h.provider: h.config},
            "resources": h.resources}
    directory.mkdir(parents=True)
    (directory / "mlform.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    for name, text in h.files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory


def _session(stack: Path, command: str = "apply") -> Session:
    return Session(Options(stack_dir=stack), command)


def _plan(stack: Path, **options: Any) -> Plan:
    session = _session(stack, "plan")
    try:
        state = refresh(session.read_state(), session.providers).state
        return make_plan(session.stack, state, session.variables, session.providers,
                         PlanOptions(**options))
    finally:
        session.close()


def _apply(stack: Path) -> ApplyResult:
    session = _session(stack)
    try:
        state = refresh(session.read_state(), session.providers).state
        plan = make_plan(session.stack, state, session.variables, session.providers,
                         PlanOptions())
        return Applier(session.stack, state, session.variables, session.providers,
                       session.backend, parallelism=4).apply(plan)
    finally:
        session.close()


def _refresh(stack: Path) -> RefreshResult:
    session = _session(stack, "refresh")
    try:
        return refresh(session.read_state(), session.providers)
    finally:
        session.close()


def _state(stack: Path) -> State:
    session = _session(stack, "show")
    try:
        return session.read_state()
    finally:
        session.close()


def _lone_create(stack: Path, h: Harness) -> tuple[Session, Provider, CreateRequest]:
    """A session on the stack, its provider, and the create the engine would send for
    `h.lone` (same inputs, same idempotency key)."""
    session = _session(stack)
    state = session.read_state()
    inputs = {k: v for k, v in h.resources[h.lone].items() if k != "type"}
    key = idempotency_key(state.stack, h.lone, inputs, state.salt)
    req = CreateRequest(ResourceRef(h.lone, h.resources[h.lone]["type"]), inputs, key)
    return session, session.providers.get(h.provider), req


def test_apply_then_observe_then_a_second_plan_is_empty(harness, tmp_path):
    # What was just made reads back as made: refresh finds nothing and plans nothing.
    stack = _write(tmp_path / "stack", harness)
    result = _apply(stack)
    assert result.ok, result.failed
    assert set(result.done) == set(harness.resources)
    assert _refresh(stack).findings == []
    plan = _plan(stack)
    assert not plan.has_changes(), [(c.name, c.action) for c in plan.actionable()]


def test_a_repeated_create_with_the_same_key_adopts(harness, tmp_path):
    # A create retried after a lost answer must find the first one, not make a second.
    stack = _write(tmp_path / "stack", harness)
    session, provider, req = _lone_create(stack, harness)
    try:
        first = provider.create(req, QUIET)
        again = provider.create(req, QUIET)
        found = provider.observe(ObserveRequest(req.resource, req.inputs, None,
                                                idempotency_key=req.idempotency_key))
    finally:
        session.close()
    assert (first.error, again.error) == (None, None)
    assert again.id == first.id and again.outputs == first.outputs
    assert (found.exists, found.id) == (True, first.id)


def test_deleting_what_is_gone_succeeds(harness, tmp_path):
    # A delete retried after a lost answer, or of something removed by hand, is done.
    stack = _write(tmp_path / "stack", harness)
    session, provider, req = _lone_create(stack, harness)
    try:
        made = provider.create(req, QUIET)
        ref = ResourceRef(req.resource.name, req.resource.type, made.id)
        gone = DeleteRequest(ref, req.inputs, made.outputs)
        first, second = provider.delete(gone, QUIET), provider.delete(gone, QUIET)
        after = provider.observe(ObserveRequest(ref, req.inputs, made.outputs))
    finally:
        session.close()
    assert (first.error, second.error) == (None, None)
    assert not after.exists


def test_outputs_validate_against_the_types_output_models(harness, tmp_path):
    # References into outputs are checked at plan against these models: what a provider
    # returns must fit them, and hold every output it declares it produces.
    stack = _write(tmp_path / "stack", harness)
    assert _apply(stack).ok
    session = _session(stack, "show")
    try:
        provider = session.providers.get(harness.provider)
        problems = {name: output_problems(res.type, res.outputs, produced(provider, res.type))
                    for name, res in session.read_state().resources.items()}
    finally:
        session.close()
    assert problems == {name: [] for name in harness.resources}


def test_an_out_of_band_change_is_drift(harness, tmp_path):
    # Refresh must see what someone changed behind mlform's back, as that kind of drift.
    stack = _write(tmp_path / "stack", harness)
    assert _apply(stack).ok
    kind = harness.tamper(stack, _state(stack).resources[harness.lone])
    found = [(f.name, f.kind) for f in _refresh(stack).findings]
    assert found == [(harness.lone, kind)]


def test_a_kill_during_create_is_adopted_on_the_next_apply(harness, tmp_path):
    # What a kill between the provider's create and the journal's "done" leaves: the
    # object exists, the journal holds only the intent. The next apply adopts it.
    stack = _write(tmp_path / "stack", harness)
    session, provider, req = _lone_create(stack, harness)
    try:
        made = provider.create(req, QUIET)
        assert made.error is None, made.error
        state = session.read_state()
        pending = ResourceState(name=harness.lone, type=req.resource.type,
                                provider=harness.provider, id=None, inputs=req.inputs,
                                outputs={}, dependencies=(), status="pending",
                                idempotency_key=req.idempotency_key,
                                provider_type=harness.provider)
        session.backend.journal_append(JournalEntry(
            kind="intent", name=harness.lone, lineage=state.lineage,
            base_serial=state.serial, resource=resource_to_json(pending, state.salt)))
    finally:
        session.close()
    result = _apply(stack)
    assert result.ok, result.failed
    assert harness.lone not in result.done  # adopted, not created a second time
    assert _state(stack).resources[harness.lone].id == made.id


def test_invoke_answers_where_supported(harness, tmp_path):
    # A gateway forwards through `invoke`: a provider that supports it answers one
    # prediction per instance; one that does not says so (501), and never raises. A
    # harness with `serving` resources must answer for its endpoint.
    harness = dataclasses.replace(harness, resources={**harness.resources, **harness.serving})
    stack = _write(tmp_path / "stack", harness)
    assert _apply(stack).ok
    session = _session(stack, "show")
    try:
        provider = session.providers.get(harness.provider)
        answers = {}
        for name, res in session.read_state().resources.items():
            rows = [[float(i), 30.0 + i] for i in range(3)]
            answers[name] = provider.invoke(InvokeRequest(
                ResourceRef(name, res.type, res.id), {**res.outputs, **res.private}, rows))
    finally:
        session.close()
    for name, answer in answers.items():
        if name in harness.serving and harness.serving[name]["type"] == "endpoint":
            assert answer.status != 501, answer.error
        if harness.resources[name]["type"] != "endpoint" or answer.status == 501:
            assert (answer.status, answer.predictions) == (501, []), name
            assert answer.error and "cannot invoke" in answer.error
        else:
            assert answer.error is None, answer.error
            assert len(answer.predictions) == 3
