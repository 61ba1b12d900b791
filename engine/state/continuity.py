"""Is the state a backend holds the one this stack left there? The checks and their errors.

Pure functions over the record (`record.BackendRecord`) and the state read; no I/O.
Three breaks are refused, each with the way to accept it on purpose:
- the backend changed (`backend:` edited) while the previous one still holds resources;
- the state's lineage is not the one last seen (another state was put in its place);
- its serial went back, or it vanished (an old copy restored, or the file removed).
"""

from __future__ import annotations

from ..diagnostics import Diagnostic, Location, MlformError
from .model import State
from .record import BackendRecord

ACCEPT = "mlform state accept"
MIGRATE = "mlform state migrate"


def check_continuity(record: BackendRecord, state: State | None, where: str) -> None:
    """Raise unless `state`, read from `where`, continues what `record` last saw."""
    if record.lineage is None or record.serial is None:
        return
    last = f"lineage {record.lineage} at serial {record.serial}"
    if state is None:
        raise MlformError.simple(
            f"{where} is gone",
            detail=f"this stack last saw {last} there; without it every resource would be "
                   "planned as new and created a second time",
            help=f"put the state back (from a copy or the backend's backup); to start from "
                 f"an empty state on purpose (the live resources stay, unmanaged), run "
                 f"'{ACCEPT}'")
    if state.lineage != record.lineage:
        raise MlformError.simple(
            f"{where} holds another state than the one this stack last used",
            detail=f"it holds lineage {state.lineage} at serial {state.serial} "
                   f"({_count(state)}); this stack last saw {last}\n"
                   "a state is replaced like this when one from another stack or an older "
                   "setup is copied over it",
            help=f"if it is the wrong state, put the right one back; to adopt this one as "
                 f"the stack's state from now on, run '{ACCEPT}'")
    if state.serial < record.serial:
        raise MlformError.simple(
            f"{where} went back from serial {record.serial} to serial {state.serial}",
            detail=f"same lineage {state.lineage}: an older copy was restored, and what "
                   f"changed after serial {state.serial} is missing from it",
            help=f"put the latest state back; to continue from this older one on purpose, "
                 f"run '{ACCEPT}', then 'mlform plan' to see what it no longer knows")


def backend_changed(previous: str, previous_state: State, current: str,
                    location: Location | None) -> MlformError:
    """The error for a `backend:` that moved away from a state holding resources."""
    return MlformError(Diagnostic(
        f"the backend changed, but the state is still in {previous} "
        f"({_count(previous_state)})",
        location=location,
        detail=f"mlform.yaml now points at {current}; this stack last used {previous} "
               f"(lineage {previous_state.lineage}, serial {previous_state.serial})\n"
               "reading the new backend instead would plan every resource as new",
        help=f"copy the state to the new backend with '{MIGRATE}'; to leave it behind and "
             f"start from what the new backend holds (the live resources stay, unmanaged), "
             f"run '{MIGRATE} --reconfigure'; or set 'backend:' back"))


def unreadable_previous(previous: str, problem: MlformError,
                        location: Location | None) -> MlformError:
    """The error when the previous backend cannot be read to see whether it holds resources."""
    return MlformError(Diagnostic(
        f"the backend changed, and the previous one ({previous}) cannot be read to check "
        "whether it still holds the state",
        location=location,
        detail=problem.diagnostics[0].summary,
        help=f"make it readable and run '{MIGRATE}'; or, if that state is lost or not "
             f"needed, run '{MIGRATE} --reconfigure' to use the new backend as it is"))


def _count(state: State) -> str:
    n = len(state.resources)
    return f"{n} resource{'s' if n != 1 else ''}"
