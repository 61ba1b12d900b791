"""Carrying out a plan through providers, recording every step as it happens.

Before each remote call the intent (with its idempotency key) goes to the
journal; after it, the result. The journal is fsynced per entry, so an apply
killed at any instant leaves a state that the next command replays: a create
that may have happened is found by its key and adopted, never duplicated.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..capabilities import output_error, portable
from ..diagnostics import MlformError
from ..evaluate import Evaluator
from ..hooks import Hooks
from ..plan.model import Action, Plan, ResourceChange
from ..provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DiffRequest,
    Failure,
    Progress,
    UpdateRequest,
)
from ..providerset import ProviderSet, ref
from ..redaction import scrub
from ..spec.loader import Stack
from ..state.backend import Backend, JournalEntry
from ..state.model import ResourceState, State
from ..state.statefile import resource_to_json
from ..values import contains_unknown, to_storable
from .walker import Walker


@dataclass(frozen=True)
class Effect:
    resource: str
    action: str
    """create | update | delete | move"""
    id: str | None
    provider: str


@dataclass
class ApplyResult:
    state: State
    done: dict[str, str] = field(default_factory=dict)
    """name -> action carried out"""
    failed: dict[str, str] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    """name -> the typed kind of its failure, where the provider gave one"""
    skipped: dict[str, str] = field(default_factory=dict)
    not_started: list[str] = field(default_factory=list)
    interrupted: bool = False
    effects: list[Effect] = field(default_factory=list)
    """Every object a provider created, updated or deleted, in the order it happened:
    what the summary counts and the audit log records (a replacement is a create and a
    delete, whichever of the two failed)."""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.not_started


def idempotency_key(stack: str, name: str, inputs: dict, salt: str) -> str:
    blob = json.dumps(to_storable(inputs, salt), sort_keys=True, default=str)
    return f"{stack}.{name}.{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


class Applier:
    def __init__(self, stack: Stack | None, state: State, variables: dict[str, Any],
                 providers: ProviderSet, backend: Backend, hooks: Hooks | None = None,
                 parallelism: int = 10):
        self.stack = stack
        self.state = state
        self.variables = variables
        self.providers = providers
        self.backend = backend
        self.hooks = hooks or Hooks()
        from ..tracking import Tracker

        self.tracker = Tracker.for_stack(stack, self.hooks.event)
        self.walker: Walker | None = None
        self.parallelism = parallelism
        self._lock = threading.Lock()
        self._done: dict[str, str] = {}
        self._effects: list[Effect] = []
        self._failures: dict[str, Failure] = {}
        self._deposed: dict[str, str] = {}
        """name -> the name its old object is recorded under while a create-then-delete
        replacement is under way"""
        # Mutated in place while walking: copying the state per change would make an
        # apply quadratic in the number of resources.
        self.resources: dict[str, ResourceState] = dict(state.resources)

    # --- the walk ---------------------------------------------------------------
    def apply(self, plan: Plan) -> ApplyResult:
        changes = {c.name: c for c in plan.changes if c.action is not Action.NOOP}
        changes |= self._deposed_deletes(changes)
        deps = {name: (self._delete_waits_for(name, changes) if c.action is Action.DELETE
                       else [d for d in c.dependencies if d in changes])
                for name, c in changes.items()}
        for name, deposed in self._deposed.items():
            if name not in deps[deposed]:
                deps[deposed].append(name)
        self.walker = Walker(deps, self.parallelism)
        walk = self.walker.walk(lambda n: self._apply_one(changes[n]),
                                on_skip=self.hooks.skipped)
        final = self._finish(plan)
        return ApplyResult(state=final, done=dict(self._done), failed=walk.failed,
                           failures=dict(self._failures), skipped=walk.skipped,
                           not_started=walk.not_started,
                           interrupted=self.walker.stopping, effects=list(self._effects))

    def _deposed_deletes(self, changes: dict[str, ResourceChange]) -> dict[str, ResourceChange]:
        """A create-then-delete replacement deletes its old object as a step of its own,
        after the new one exists *and* after everything that used the old one has moved
        on: an endpoint is rolled over to the new model before the old model goes."""
        extra = {}
        for name, c in changes.items():
            prior = self.resources.get(name)
            moving_own = c.action is Action.MOVE and c.move_source == name
            if not (c.action is Action.CREATE_DELETE or moving_own) or prior is None:
                continue
            deposed = _free_name(f"{name}~deposed", set(self.resources) | set(changes))
            self._deposed[name] = deposed
            extra[deposed] = ResourceChange(
                name=deposed, type=prior.type, provider=prior.provider, action=Action.DELETE,
                before=prior.inputs, after=None, reasons=(f"replaced by the new {name}",),
                dependencies=prior.dependencies)
        return extra

    def _delete_waits_for(self, name: str, changes: dict[str, ResourceChange]) -> list[str]:
        """A delete waits for the deletion of what depends on it, and for every other
        change to a resource that uses it (in the spec or, before this apply, in state),
        so that nothing is deleted while something still serves from it."""
        base = name.split("~", 1)[0]
        waits = []
        for other in changes.values():
            if other.name == name:
                continue
            if other.action is Action.DELETE:
                # an old object set aside waits for the old objects that used it
                if name in other.dependencies or \
                        (base != name and "~" in other.name and base in other.dependencies):
                    waits.append(other.name)
                continue
            if other.name == base != name:  # an old object waits for its successor
                waits.append(other.name)
                continue
            prior = self.resources.get(other.name)
            used = set(other.dependencies) | set(prior.dependencies if prior else ())
            if name in used or (base != name and base in used):
                waits.append(other.name)
        return waits

    def stop(self) -> None:
        if self.walker:
            self.walker.stop()

    def _finish(self, plan: Plan) -> State:
        outputs = dict(self.state.outputs)
        if self.stack is not None and not plan.targets:
            try:
                outputs = Evaluator(self.stack, self.variables, self._attributes).outputs()
                outputs = {k: v for k, v in outputs.items() if not contains_unknown(v)}
            except MlformError:
                pass
        if plan.destroy:
            outputs = {}
        self.state = self.state.next_serial(outputs=outputs, resources=dict(self.resources))
        self.backend.write(self.state)
        return self.state

    # --- one resource -----------------------------------------------------------
    def _attributes(self, name: str):
        res = self.resources.get(name)
        return None if res is None else {**res.outputs, "id": res.id}

    def _apply_one(self, change: ResourceChange) -> str | None:
        started = time.monotonic()
        self.hooks.started(change.name, change.action.value)
        secrets: dict[str, Any] = {}
        try:
            error, action = self._dispatch(change, secrets)
        except MlformError as exc:
            error, action = exc.diagnostics[0].summary, change.action.value
        if error:
            error = scrub(error, secrets)
        ok = error is None
        if ok and action:
            with self._lock:
                self._done[change.name] = action
        if self.tracker is not None and action != "delete":
            self._track(change, error)
        self.hooks.finished(change.name, action or "no-op", ok, error or "",
                            time.monotonic() - started)
        return error

    def _track(self, change: ResourceChange, error: str | None) -> None:
        """Log a finished training run or model registration (or one a gate refused) to the
        stack's experiment tracking."""
        assert self.tracker is not None
        res = self.resources.get(change.name)
        if error is None and res is not None:
            self.tracker.finished(change.type, change.name, res.inputs, res.provider_outputs)
        elif error is not None and self._failures.get(change.name) is Failure.GATE_FAILED:
            inputs = res.inputs if res is not None else change.after or {}
            self.tracker.refused(change.type, change.name, inputs, error)

    def _dispatch(self, change: ResourceChange,
                  secrets: dict[str, Any]) -> tuple[str | None, str]:
        """Carry out one change; `secrets` receives the inputs, so that what the provider
        says (progress, errors) is scrubbed of their sensitive values."""
        progress = Progress(lambda msg, frac: self.hooks.progress(
            change.name, scrub(msg, secrets), frac))
        prior = self.resources.get(change.name)
        if change.action is Action.DELETE:
            return self._delete(prior, progress), "delete"
        provider = self.providers.get(change.provider)
        assert self.stack is not None, "without a stack a plan can only delete"
        from mlform.ml.experiments.promotion import desired_inputs

        # the planner's own function: what the plan showed, evaluated with what is known now
        inputs, _ = desired_inputs(
            change.type, Evaluator(self.stack, self.variables, self._attributes).inputs(
                change.name), prior.provider_outputs if prior is not None else None)
        secrets["inputs"] = inputs
        if contains_unknown(inputs):
            return f"inputs still unknown at apply time: {inputs}", change.action.value
        if change.action is Action.CREATE:
            return self._create(provider, change, inputs, progress), "create"
        if change.action is Action.MOVE:
            from ..moves.run import MoveStep

            return MoveStep(self, provider, change, inputs, progress).run(), "move"
        if change.action is Action.UPDATE:
            return self._update(provider, change, prior, inputs, progress)
        if change.action is Action.DELETE_CREATE:
            err = self._delete(prior, progress)
            return (err or self._create(provider, change, inputs, progress)), "replace"
        # create-then-delete: the old object is recorded under its own name, so that no
        # crash can lose it, and stays until the new one works and its users moved on.
        deposed = None
        if prior is not None:
            deposed = prior.with_(name=self._deposed[change.name])
            self._journal("done", deposed)
        err = self._create(provider, change, inputs, progress)
        if err and prior is not None and deposed is not None \
                and change.name not in self.resources:
            self._journal("deleted", deposed)  # a record moved back, nothing deleted
            self._journal("done", prior)
        return err, "replace"

    def _create(self, provider, change: ResourceChange, inputs: dict, progress) -> str | None:
        key = idempotency_key(self.state.stack, change.name, inputs, self.state.salt)
        pending = ResourceState(name=change.name, type=change.type, provider=change.provider,
                                id=None, inputs=inputs, outputs={},
                                dependencies=tuple(change.dependencies), status="pending",
                                idempotency_key=key, provider_type=self._ptype(change.provider),
                                updated_at=_now())
        self._journal("intent", pending)
        resp = provider.create(CreateRequest(resource=ref(change.name, change.type),
                                             inputs=inputs, idempotency_key=key), progress)
        if resp.error:
            self._note_failure(change.name, resp)
            if resp.id:  # partly made: keep it so that the next apply replaces it
                self._journal("done", pending.with_(id=resp.id, status="tainted"))
            else:
                self._journal("failed", pending, detail=resp.error)
                with self._lock:
                    self.resources.pop(change.name, None)
            return resp.error
        bad = output_error(provider, change.provider, change.type, change.name, resp.outputs)
        if bad:  # made, but its record would mislead: kept, and replaced by the next apply
            self._journal("done", _recorded(pending, provider, resp.outputs, id=resp.id,
                                            status="tainted"))
            return bad
        self._journal("done", _recorded(pending, provider, resp.outputs, id=resp.id,
                                        status="ready"))
        self._record(change.name, "create", resp.id, change.provider)
        return None

    def _update(self, provider, change: ResourceChange, prior: ResourceState | None,
                inputs: dict, progress) -> tuple[str | None, str]:
        assert prior is not None
        diff = provider.diff(DiffRequest(resource=ref(change.name, change.type, prior.id),
                                         prior_inputs=prior.inputs,
                                         prior_outputs=prior.provider_outputs,
                                         desired_inputs=inputs))
        if diff.error:
            return diff.error, "update"
        if not diff.changes and not diff.note:
            # What was unknown at plan time turned out unchanged.
            self._journal("done", prior.with_(inputs=inputs, updated_at=_now()))
            return None, ""
        if diff.requires_replace:
            err = self._delete(prior, progress)
            return (err or self._create(provider, change, inputs, progress)), "replace"
        self._journal("intent", prior.with_(status="pending", idempotency_key=prior.id))
        resp = provider.update(UpdateRequest(resource=ref(change.name, change.type, prior.id),
                                             prior_inputs=prior.inputs,
                                             prior_outputs=prior.provider_outputs,
                                             inputs=inputs,
                                             changes=list(diff.changes)), progress)
        if resp.error:
            self._note_failure(change.name, resp)
            # The old inputs still stand (the next plan tries again); outputs the provider
            # returned say what is live now (a rollout held at a step).
            self._journal("done", _recorded(prior, provider, resp.outputs))
            return resp.error, "update"
        bad = output_error(provider, change.provider, change.type, change.name,
                           resp.outputs or prior.provider_outputs)
        if bad:
            self._journal("done", _recorded(prior, provider, resp.outputs, status="tainted"))
            return bad, "update"
        self._journal("done", _recorded(prior, provider, resp.outputs, inputs=inputs,
                                        id=resp.id or prior.id, status="ready",
                                        dependencies=tuple(change.dependencies),
                                        updated_at=_now()))
        self._record(change.name, "update", resp.id or prior.id, change.provider)
        return None, "update"

    def _delete(self, prior: ResourceState | None, progress) -> str | None:
        """Delete the object `prior` records, through the provider that made it (a
        resource moving to another provider is deleted where it was, not where it goes)."""
        if prior is None:
            return None
        base = prior.name.split("~", 1)[0]
        successor = self.resources.get(base) if base != prior.name else None
        if successor is not None and (successor.provider, successor.type, successor.id) == \
                (prior.provider, prior.type, prior.id) and prior.id is not None:
            # The replacement is the same object (a registry keeps its name and adds a
            # version): deleting "the old one" would delete the new one.
            progress(f"the new {base} is the same {prior.type} ({prior.id}); nothing to delete")
            self._journal("deleted", prior)
            return None
        provider = self.providers.get(prior.provider)
        self._journal("intent", prior.with_(status="pending"))
        resp = provider.delete(DeleteRequest(resource=ref(base, prior.type, prior.id),
                                             inputs=prior.inputs,
                                             outputs=prior.provider_outputs),
                               progress)
        if resp.error:
            self._journal("done", prior.with_(status="tainted"))
            return resp.error
        self._journal("deleted", prior)
        self._record(prior.name, "delete", prior.id, prior.provider)
        return None

    def _note_failure(self, name: str, resp: ApplyResponse) -> None:
        if resp.failure is not None:
            with self._lock:
                self._failures[name] = Failure(resp.failure)

    def _record(self, name: str, action: str, rid: str | None, provider: str) -> None:
        with self._lock:
            self._effects.append(Effect(name.split("~", 1)[0], action, rid, provider))

    # --- recording --------------------------------------------------------------
    def _journal(self, kind: str, res: ResourceState, detail: str = "") -> None:
        # Each resource is handled by one worker, so its entries stay in order; entries of
        # different resources may interleave, and the backend batches their fsyncs.
        self.backend.journal_append(JournalEntry(
            kind=kind, name=res.name, lineage=self.state.lineage,
            base_serial=self.state.serial,
            resource=resource_to_json(res, self.state.salt) if kind != "deleted" else None,
            detail=detail))
        with self._lock:
            if kind == "deleted":
                self.resources.pop(res.name, None)
            elif kind in ("intent", "done"):
                self.resources[res.name] = res

    def _ptype(self, provider_name: str) -> str:
        spec = self.providers.specs.get(provider_name)
        return spec.type if spec else ""


def _free_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}{n}"
    return candidate


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _recorded(res: ResourceState, provider, returned: dict[str, Any] | None,
              **changes: Any) -> ResourceState:
    """`res` recording the outputs its provider `returned`, the portable ones apart from
    the provider's private data; none returned: what it recorded before stands."""
    if not returned:
        return res.with_(**changes)
    return res.with_provider_outputs(returned, portable(provider, res.type), **changes)
