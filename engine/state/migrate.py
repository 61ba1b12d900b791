"""Copying a stack's state from one backend to another, as `terraform init -migrate-state`.

Both backends are locked for the copy, so no apply can change either meanwhile.
The state keeps its lineage and serial, so plan files made before the move still
apply after it. A target that already holds a different state with resources is
refused unless forced (its backend keeps it as the backup when overwritten).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from ..diagnostics import MlformError
from .backend import Backend, LockInfo
from .model import State

COPIED, ALREADY_THERE, NOTHING = "copied", "already there", "nothing"


@dataclass(frozen=True)
class Migration:
    outcome: str
    """`copied`; `already there` (the target holds this state, as new or newer);
    `nothing` (the source holds no state)."""
    state: State | None
    """The state the target holds afterwards."""


def migrate(source: Backend, target: Backend, info: LockInfo, timeout: float = 0.0,
            force: bool = False) -> Migration:
    """Copy the state from `source` to `target`, both locked under `info` (raises `LockHeld`
    when either stays held for `timeout` seconds)."""
    with _locked(source, info, timeout), _locked(target, info, timeout):
        state = source.read()
        if state is None:
            return Migration(NOTHING, target.read())
        if source.journal_read():
            # An interrupted apply's steps were replayed into the state read: like anyone
            # who stores a replayed state, store it as the next serial.
            state = state.next_serial()
        there = target.read()
        if there is not None and there.lineage == state.lineage and there.serial >= state.serial:
            return Migration(ALREADY_THERE, there)
        if there is not None and there.lineage != state.lineage and there.resources \
                and not force:
            raise MlformError.simple(
                f"{target.describe()} already holds another state "
                f"(lineage {there.lineage}, serial {there.serial}, "
                f"{len(there.resources)} resources)",
                detail=f"the state to move is lineage {state.lineage}, serial {state.serial}, "
                       f"{len(state.resources)} resources, from {source.describe()}",
                help="point 'backend:' at an empty location; or, if the state there is not "
                     "needed, run 'mlform state migrate --force' to overwrite it (the backend "
                     "keeps it as its backup)")
        target.write(state)
        return Migration(COPIED, state)


@contextlib.contextmanager
def _locked(backend: Backend, info: LockInfo, timeout: float) -> Iterator[None]:
    backend.lock(info, timeout)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            backend.unlock(info.id)
