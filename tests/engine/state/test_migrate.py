"""Copying a state between two local backends: what is copied, kept, or refused."""

from __future__ import annotations

import pytest
from mlform.engine.diagnostics import MlformError
from mlform.engine.state.backend import JournalEntry, LockHeld, LockInfo
from mlform.engine.state.local_backend import LocalBackend
from mlform.engine.state.migrate import ALREADY_THERE, COPIED, NOTHING, migrate
from mlform.engine.state.model import ResourceState, State
from mlform.engine.state.statefile import resource_to_json

SALT = "salt0123456789ab"


def state(lineage: str = "lin-a", serial: int = 3, *names: str) -> State:
    out = State(lineage=lineage, serial=serial, stack="s", salt=SALT)
    for name in names or ("a",):
        out = out.with_resource(ResourceState(name, "dataset", "local", f"id-{name}", {}, {}))
    return out


@pytest.fixture
def pair(tmp_path):
    return LocalBackend(tmp_path, "old/state.json"), LocalBackend(tmp_path, "new/state.json")


def test_the_state_is_copied_with_its_lineage_and_serial(pair):
    source, target = pair
    source.write(state())
    done = migrate(source, target, LockInfo.mine("state migrate"))
    assert (done.outcome, target.read()) == (COPIED, state())
    assert source.read() == state()  # left in place
    assert source.holder() is None and target.holder() is None  # both released


def test_an_interrupted_apply_in_the_source_is_carried_over_as_the_next_serial(pair):
    source, target = pair
    source.write(state())
    done = resource_to_json(ResourceState("b", "dataset", "local", "id-b", {}, {}), SALT)
    source.journal_append(JournalEntry("done", "b", "lin-a", 3, done))
    migrate(source, target, LockInfo.mine("state migrate"))
    moved = target.read()
    assert (moved.serial, sorted(moved.resources)) == (4, ["a", "b"])


@pytest.mark.parametrize("there, outcome", [
    pytest.param(None, NOTHING, id="empty-source"),
    pytest.param(state(serial=5), ALREADY_THERE, id="target-has-it-newer"),
    # reason: copying an older serial over a newer one of the same state would set it back
])
def test_nothing_is_overwritten_needlessly(pair, there, outcome):
    source, target = pair
    if outcome is not NOTHING:
        source.write(state())
    if there is not None:
        target.write(there)
    assert migrate(source, target, LockInfo.mine("state migrate")).outcome == outcome
    assert target.read() == there


def test_another_nonempty_state_in_the_target_needs_force(pair):
    source, target = pair
    source.write(state())
    target.write(state("lin-b", 9, "x"))
    with pytest.raises(MlformError, match="already holds another state"):
        migrate(source, target, LockInfo.mine("state migrate"))
    assert target.read() == state("lin-b", 9, "x")
    migrate(source, target, LockInfo.mine("state migrate"), force=True)
    assert target.read() == state()


def test_a_held_lock_on_either_side_refuses_and_releases_the_other(pair):
    source, target = pair
    source.write(state())
    other = LocalBackend(target.state_path.parent.parent, "new/state.json")
    held = LockInfo.mine("apply")
    other.lock(held)
    with pytest.raises(LockHeld) as refused:
        migrate(source, target, LockInfo.mine("state migrate"))
    assert refused.value.holder == held
    assert source.holder() is None  # the lock taken first was given back
    other.unlock(held.id)
