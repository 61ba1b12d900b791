"""A provider's private data (what it returns beyond its type's output model) is kept apart
from the portable outputs in state, handed back to it merged on every call, and out of
reach of references; a state of the previous format (all of it in outputs) still reads."""

from __future__ import annotations

import dataclasses
import json
from contextlib import nullcontext

import pytest
from click.testing import CliRunner
from mlform.engine import providerset
from mlform.engine.apply.applier import Applier
from mlform.engine.cli.state_cmd import import_cmd
from mlform.engine.controller.ticks import PassResult, tick_all
from mlform.engine.plan.planner import PlanOptions, make_plan
from mlform.engine.provider import TickResponse
from mlform.engine.refresh import refresh
from mlform.engine.session import Options, Session
from mlform.engine.state.model import ResourceState, split_outputs
from mlform.engine.state.statefile import resource_from_json, resource_problems, resource_to_json
from mlform.providers.null.provider import NullProvider

SPEC = """\
version: 1
stack: private
providers:
  null: {}
resources:
  data:
    type: dataset
    source: SOURCE
outputs:
  where: {value: "${data.uri}"}
"""

PREVIOUS_FORMAT = {  # a resource as the previous version stored it: no `private` key
    "type": "dataset", "provider": "null", "provider_type": "null", "id": "null-1",
    "inputs": {"source": "a.csv"}, "outputs": {"uri": "null://x", "pid": 7},
    "dependencies": [], "status": "ready", "idempotency_key": None, "updated_at": "",
}


@pytest.mark.parametrize(("res", "stored_private"), [
    (ResourceState("data", "dataset", "null", "null-1", {}, {"uri": "null://x"}), None),
    (ResourceState("data", "dataset", "null", "null-1", {}, {"uri": "null://x"},
                   private={"pid": 7, "port": 8001}), {"pid": 7, "port": 8001}),
], ids=["none-is-stored-as-the-previous-version-did", "private-is-stored-apart"])
def test_the_state_file_keeps_private_data_apart(res, stored_private):
    doc = resource_to_json(res, "salt")
    assert doc.get("private") == stored_private
    assert ("private" in doc) is (stored_private is not None)
    assert resource_from_json("data", doc) == res


def test_a_resource_of_the_previous_format_reads_unchanged():
    assert resource_problems(PREVIOUS_FORMAT, "resources.data") == []
    res = resource_from_json("data", PREVIOUS_FORMAT)
    assert res.outputs == {"uri": "null://x", "pid": 7} and res.private == {}
    assert res.provider_outputs == {"uri": "null://x", "pid": 7}
    # written back byte for byte as it was read
    assert resource_to_json(res, "salt") == PREVIOUS_FORMAT


def test_a_private_that_is_not_an_object_is_a_state_problem():
    assert resource_problems({**PREVIOUS_FORMAT, "private": [1]}, "resources.data") == \
        ["resources.data.private: must be an object"]


@pytest.mark.parametrize(("portable", "outputs", "private"), [
    (None, {"uri": "u", "pid": 7}, {}),
    (frozenset({"uri", "rows"}), {"uri": "u"}, {"pid": 7}),
    (frozenset(), {}, {"uri": "u", "pid": 7}),
], ids=["declares-nothing-keeps-all-as-outputs", "splits-by-the-model", "nothing-portable"])
def test_split_outputs(portable, outputs, private):
    got = split_outputs({"uri": "u", "pid": 7}, portable)
    assert got == (outputs, private)


class Keeper(NullProvider):
    """The null provider, plus private data (a `pid`, one per verb) and an output of
    the dataset model it does not declare (`rows`); it notes the outputs it is handed."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.handed: list[tuple[str, dict | None]] = []

    @staticmethod
    def _more(resp, pid: int):
        if not resp.outputs:
            return resp
        return dataclasses.replace(resp, outputs={**resp.outputs, "pid": pid, "rows": 2})

    def diff(self, req):
        self.handed.append(("diff", req.prior_outputs))
        return super().diff(req)

    def observe(self, req):
        self.handed.append(("observe", req.outputs))
        return self._more(super().observe(req), 303)

    def create(self, req, progress):
        return self._more(super().create(req, progress), 101)

    def update(self, req, progress):
        self.handed.append(("update", req.prior_outputs))
        return self._more(super().update(req, progress), 202)

    def delete(self, req, progress):
        self.handed.append(("delete", req.outputs))
        return super().delete(req, progress)


def _session(directory) -> tuple[Session, Keeper]:
    session = Session(Options(stack_dir=directory), "apply")
    keeper = Keeper(session.providers.get("null").ctx)
    session.providers._made["null"] = keeper
    return session, keeper


def _apply(directory, **options):
    session, keeper = _session(directory)
    try:
        state = session.read_state()
        if options.pop("refresh", False):
            state = refresh(state, session.providers).state
        plan = make_plan(session.stack, state, session.variables, session.providers,
                         PlanOptions(**options))
        result = Applier(session.stack, state, session.variables, session.providers,
                         session.backend).apply(plan)
        assert result.ok, result.failed
        return session.read_state(), keeper
    finally:
        session.close()


def _stored(directory) -> dict:
    return json.loads((directory / ".mlform" / "state.json").read_text())


def test_apply_records_private_data_apart_and_hands_it_back(null_stack):
    directory = null_stack(SPEC.replace("SOURCE", "a.csv"), **{"a.csv": "a\n1\n"})
    state, _ = _apply(directory)
    data = state.resources["data"]
    # `rows` is the dataset model's though undeclared: portable (engine-readable)
    assert set(data.outputs) == {"uri", "version", "rows"}
    assert data.private == {"pid": 101}
    assert _stored(directory)["resources"]["data"]["private"] == {"pid": 101}
    # stack outputs see the portable outputs
    assert state.outputs == {"where": data.outputs["uri"]}

    (directory / "mlform.yaml").write_text(SPEC.replace("SOURCE", "b.csv"))
    state, keeper = _apply(directory)
    assert [verb for verb, _ in keeper.handed] == ["diff", "diff", "update"]
    assert all(outputs["pid"] == 101 for _, outputs in keeper.handed)
    assert state.resources["data"].private == {"pid": 202}
    assert "pid" not in state.resources["data"].outputs

    updated = state.resources["data"]
    state, keeper = _apply(directory, destroy=True)
    assert keeper.handed == [("delete", {**updated.outputs, "pid": 202})]
    assert state.resources == {}


def test_refresh_records_what_it_reads_back_apart(null_stack):
    directory = null_stack(SPEC.replace("SOURCE", "a.csv"), **{"a.csv": "a\n1\n"})
    before, _ = _apply(directory)
    session, keeper = _session(directory)
    try:
        after = refresh(session.read_state(), session.providers).state
    finally:
        session.close()
    assert keeper.handed == [("observe", {**before.resources["data"].outputs, "pid": 101})]
    assert after.resources["data"].private == {"pid": 303}
    assert after.resources["data"].outputs == before.resources["data"].outputs


def test_state_of_the_previous_format_splits_on_refresh_and_plans_empty(null_stack):
    directory = null_stack(SPEC.replace("SOURCE", "a.csv"), **{"a.csv": "a\n1\n"})
    _apply(directory)
    path = directory / ".mlform" / "state.json"
    doc = _stored(directory)
    data = doc["resources"]["data"]
    data["outputs"] = {**data["outputs"], **data.pop("private")}  # as the previous version
    path.write_text(json.dumps(doc))
    state, keeper = _apply(directory, refresh=True)
    assert keeper.handed[0] == ("observe", doc["resources"]["data"]["outputs"])
    assert "pid" not in state.resources["data"].outputs and "pid" in state.resources["data"].private
    assert [verb for verb, _ in keeper.handed] == ["observe", "diff"]  # no change applied


def test_references_cannot_reach_private_data(null_stack, run_mlform):
    directory = null_stack(SPEC.replace("SOURCE", "a.csv").replace("${data.uri}", "${data.pid}"),
                           **{"a.csv": "a\n1\n"})
    got = run_mlform(["validate", "--no-color"], directory)
    text = got.stdout + got.stderr
    assert got.returncode == 1, text
    assert "error: dataset 'data' has no attribute 'pid'\n  --> mlform.yaml:10:19" in text, text


def test_show_labels_private_data(null_stack, run_mlform):
    directory = null_stack(SPEC.replace("SOURCE", "a.csv"), **{"a.csv": "a\n1\n"})
    _apply(directory)
    shown = json.loads(run_mlform(["show", "data", "--json"], directory).stdout)
    assert shown["private"] == {"pid": 101} and "pid" not in shown["outputs"]
    text = run_mlform(["show", "data", "--no-color"], directory).stdout
    assert "private (the provider's own data; references cannot reach it):\n    pid = 101" \
        in text, text


def test_a_tick_gets_private_data_and_its_answer_is_recorded_apart(null_stack):
    directory = null_stack(SPEC.replace("SOURCE", "a.csv"), **{"a.csv": "a\n1\n"})
    before, _ = _apply(directory)
    seen = []

    def run(provider, res, req):
        seen.append(req)
        return TickResponse(outputs={**req.outputs, "rows": 3, "pid": 404})

    session = Session(Options(stack_dir=directory), "watch")
    try:
        ticks = tick_all(session, ("dataset",), lambda line: None, nullcontext, PassResult(),
                         run=run)
        after = session.read_state().resources["data"]
    finally:
        session.close()
    assert [t.recorded for t in ticks] == [True]
    assert seen[0].outputs == {**before.resources["data"].outputs, "pid": 101}
    assert "pid" not in seen[0].stack_outputs["data"]  # other resources see portable ones
    assert after.private == {"pid": 404}
    assert after.outputs == {**before.resources["data"].outputs, "rows": 3}


def test_import_records_what_the_provider_finds_apart(null_stack, monkeypatch):
    directory = null_stack(SPEC.replace("SOURCE", "a.csv"), **{"a.csv": "a\n1\n"})
    before, _ = _apply(directory)
    rid = before.resources["data"].id
    doc = _stored(directory)
    doc["resources"] = {}
    (directory / ".mlform" / "state.json").write_text(json.dumps(doc))
    made = providerset.make_provider
    monkeypatch.setattr(providerset, "make_provider", lambda *a: Keeper(made(*a).ctx))
    got = CliRunner().invoke(import_cmd, ["data", rid, str(directory)])
    assert got.exit_code == 0, got.output
    stored = _stored(directory)["resources"]["data"]
    assert stored["private"] == {"pid": 303}
    assert set(stored["outputs"]) == {"uri", "version", "rows"}
