"""Incidents: what went wrong in a running stack (a drift or performance breach, a
rollback, a failed gate or job), who is on it, and what happened since, as plain
data and a small store of one JSON file per incident under `.mlform/incidents/`.

An incident is `open`, then `acknowledged` by someone working on it, then
`resolved`. Opening an incident of a kind for resources that already have an
unresolved one of that kind (open or acknowledged) adds to that incident's
timeline instead, so a breach that persists across passes of `mlform watch` is
one incident, not one per pass. Files are replaced atomically and the store is
locked while it changes.

An incident may name its `subject`, the one resource whose recovery ends it (the
monitor that breached, the endpoint that rolled back, the model whose gate failed,
the training job whose retrain failed); `resolve_recovered` resolves those for a
subject on mlform's behalf, saying what recovered (see `incident_recovery`).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KINDS = ("drift_breach", "performance_breach", "rollback", "gate_failed", "job_failed",
         "parity_failed")
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)
SYSTEM_ACTOR = "mlform"
LOCK_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class TimelineEntry:
    time: str
    actor: str
    text: str


@dataclass(frozen=True)
class Incident:
    id: str
    kind: str
    status: str
    title: str
    resources: tuple[str, ...]
    measured: dict[str, Any]
    """The latest measured values (each occurrence's are in the timeline's text)."""
    opened: str
    detail: str = ""
    occurrences: int = 1
    timeline: tuple[TimelineEntry, ...] = ()
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None
    subject: str | None = None
    """The resource whose recovery or removal resolves this incident (None: set by hand)."""
    resolution: str | None = None
    """Why it was resolved: what recovered, or the note of whoever resolved it."""

    def is_about(self, name: str) -> bool:
        """This incident's subject is `name` (incidents stored before subjects existed:
        `name` is among its resources)."""
        return self.subject == name if self.subject else name in self.resources

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["resources"] = list(self.resources)
        data["timeline"] = [asdict(e) for e in self.timeline]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        return cls(**{**data, "resources": tuple(data["resources"]),
                      "timeline": tuple(TimelineEntry(**e) for e in data["timeline"])})

    def noted(self, actor: str, text: str, **changes: Any) -> Incident:
        """This incident with one more timeline entry (and `changes` applied)."""
        entry = TimelineEntry(_now(), actor, text)
        return replace(self, **changes, timeline=(*self.timeline, entry))


class IncidentError(ValueError):
    """An incident that does not exist, or a change its status does not allow."""


class IncidentStore:
    def __init__(self, stack_dir: Path):
        self.dir = Path(stack_dir) / ".mlform" / "incidents"

    def open(self, kind: str, title: str, resources: list[str] | tuple[str, ...],
             measured: dict[str, Any] | None = None, detail: str = "",
             subject: str | None = None) -> Incident:
        """A new open incident, or the unresolved one of this kind for these resources with
        this occurrence added to its timeline."""
        if kind not in KINDS:
            raise IncidentError(f"unknown incident kind '{kind}'; kinds: {', '.join(KINDS)}")
        involved = tuple(sorted(set(resources)))
        measured = dict(measured or {})
        text = title + (f": {_values(measured)}" if measured else "") + \
            (f" ({detail})" if detail else "")
        with self._locked():
            same = next((i for i in self.list() if i.status != RESOLVED and i.kind == kind
                         and i.resources == involved), None)
            if same:
                incident = same.noted(SYSTEM_ACTOR, f"again: {text}", measured=measured,
                                      occurrences=same.occurrences + 1)
            else:
                incident = Incident(id=self._next_id(), kind=kind, status=OPEN, title=title,
                                    resources=involved, measured=measured, opened=_now(),
                                    detail=detail, subject=subject,
                                    ).noted(SYSTEM_ACTOR, f"opened: {text}")
            self._write(incident)
        return incident

    def add_timeline(self, incident_id: str, text: str, actor: str | None = None) -> Incident:
        with self._locked():
            incident = self.get(incident_id).noted(actor or _user(), text)
            self._write(incident)
        return incident

    def ack(self, incident_id: str, user: str | None = None, note: str = "") -> Incident:
        user = user or _user()
        with self._locked():
            incident = self.get(incident_id)
            if incident.status != OPEN:
                raise IncidentError(f"incident {incident_id} is {incident.status}; only an "
                                    "open incident can be acknowledged")
            incident = incident.noted(user, "acknowledged" + (f": {note}" if note else ""),
                                      status=ACKNOWLEDGED, acknowledged_by=user,
                                      acknowledged_at=_now())
            self._write(incident)
        return incident

    def resolve(self, incident_id: str, user: str | None = None, note: str = "") -> Incident:
        user = user or _user()
        with self._locked():
            incident = self.get(incident_id)
            if incident.status == RESOLVED:
                raise IncidentError(f"incident {incident_id} was resolved by "
                                    f"{incident.resolved_by} at {incident.resolved_at}")
            incident = incident.noted(user, "resolved" + (f": {note}" if note else ""),
                                      status=RESOLVED, resolved_by=user, resolved_at=_now(),
                                      resolution=note or None)
            self._write(incident)
        return incident

    def resolve_recovered(self, recoveries: list[tuple[str, tuple[str, ...], str]],
                          actor: str = SYSTEM_ACTOR) -> list[Incident]:
        """Resolve every unresolved incident that a recovery ends: each recovery is
        (subject, kinds, reason), what recovered or that it was destroyed. Returns the
        incidents resolved, in the order of `recoveries`."""
        if not recoveries or not self.dir.is_dir():
            return []  # no incident was ever opened: nothing to take a lock for
        resolved = []
        with self._locked():
            unresolved = [i for i in self.list() if i.status != RESOLVED]
            for subject, kinds, reason in recoveries:
                for incident in unresolved:
                    if incident.kind not in kinds or not incident.is_about(subject):
                        continue
                    done = incident.noted(actor, f"resolved automatically: {reason}",
                                          status=RESOLVED, resolved_by=actor,
                                          resolved_at=_now(), resolution=reason)
                    self._write(done)
                    resolved.append(done)
                unresolved = [i for i in unresolved if i.id not in {r.id for r in resolved}]
        return resolved

    def list(self, status: str | None = None) -> list[Incident]:
        """Incidents, oldest first; only those with `status` when given."""
        if status is not None and status not in STATUSES:
            raise IncidentError(f"unknown status '{status}'; statuses: {', '.join(STATUSES)}")
        found = [self._read(p) for p in sorted(self.dir.glob("inc-*.json"))]
        return [i for i in found if status is None or i.status == status]

    def get(self, incident_id: str) -> Incident:
        path = self.dir / f"{incident_id}.json"
        if not path.is_file():
            known = ", ".join(i.id for i in self.list()) or "none yet"
            raise IncidentError(f"no incident '{incident_id}' (incidents: {known})")
        return self._read(path)

    # --- storage ------------------------------------------------------------

    def _locked(self):
        from filelock import FileLock

        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return FileLock(str(self.dir / ".lock"), timeout=LOCK_TIMEOUT_SECONDS, mode=0o600)

    def _next_id(self) -> str:
        numbers = [int(p.stem.removeprefix("inc-")) for p in self.dir.glob("inc-*.json")]
        return f"inc-{max(numbers, default=0) + 1:04d}"

    def _read(self, path: Path) -> Incident:
        return Incident.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def _write(self, incident: Incident) -> None:
        from .state.local_backend import write_atomically

        text = json.dumps(incident.to_dict(), indent=1, sort_keys=True, default=str)
        write_atomically(self.dir / f"{incident.id}.json", text.encode())


def _values(measured: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in measured.items())


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
