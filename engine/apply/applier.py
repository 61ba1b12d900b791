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

from ..diagnostics import MlformError
from ..evaluate import Evaluator
from ..hooks import Hooks
from ..plan.model import Action, Plan, ResourceChange
from ..provider import (
    CreateRequest,
    DeleteRequest,
    DiffRequest,
    Progress,
    UpdateRequest,
)
from ..providerset import ProviderSet, ref
from ..spec.loader import Stack
from ..state.backend import Backend, JournalEntry
from ..state.model import ResourceState, State
from ..state.statefile import resource_to_json
from ..values import contains_unknown, to_storable
from .walker import Walker


@dataclass
class ApplyResult:
    state: State
    done: dict[str, str] = field(default_factory=dict)
    """name -> action carried out"""
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    not_started: list[str] = field(default_factory=list)
    interrupted: bool = False

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
        self.walker: Walker | None = None
        self.parallelism = parallelism
        self._lock = threading.Lock()
        self._done: dict[str, str] = {}
        # Mutated in place while walking: copying the state per change would make an
        # apply quadratic in the number of resources.
        self.resources: dict[str, ResourceState] = dict(state.resources)

    # --- the walk ---------------------------------------------------------------
    def apply(self, plan: Plan) -> ApplyResult:
        changes = {c.name: c for c in plan.changes if c.action is not Action.NOOP}
        deps: dict[str, list[str]] = {}
        for name, c in changes.items():
            if c.action is Action.DELETE:
                # A delete waits for the deletion of what depends on it.
                deps[name] = [o.name for o in changes.values()
                              if o.action is Action.DELETE and name in o.dependencies]
            else:
                deps[name] = [d for d in c.dependencies if d in changes]
        self.walker = Walker(deps, self.parallelism)
        walk = self.walker.walk(lambda n: self._apply_one(changes[n]),
                                on_skip=self.hooks.skipped)
        final = self._finish(plan)
        return ApplyResult(state=final, done=dict(self._done), failed=walk.failed,
                           skipped=walk.skipped, not_started=walk.not_started,
                           interrupted=self.walker.stopping)

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
        try:
            error, action = self._dispatch(change)
        except MlformError as exc:
            error, action = exc.diagnostics[0].summary, change.action.value
        ok = error is None
        if ok and action:
            with self._lock:
                self._done[change.name] = action
        self.hooks.finished(change.name, action or "no-op", ok, error or "",
                            time.monotonic() - started)
        return error

    def _dispatch(self, change: ResourceChange) -> tuple[str | None, str]:
        provider = self.providers.get(change.provider)
        progress = Progress(lambda msg, frac: self.hooks.progress(change.name, msg, frac))
        prior = self.resources.get(change.name)
        if change.action is Action.DELETE:
            return self._delete(provider, prior, progress), "delete"
        inputs = Evaluator(self.stack, self.variables, self._attributes).inputs(change.name)
        if contains_unknown(inputs):
            return f"inputs still unknown at apply time: {inputs}", change.action.value
        if change.action is Action.CREATE:
            return self._create(provider, change, inputs, progress), "create"
        if change.action is Action.UPDATE:
            return self._update(provider, change, prior, inputs, progress)
        if change.action is Action.DELETE_CREATE:
            err = self._delete(provider, prior, progress)
            return (err or self._create(provider, change, inputs, progress)), "replace"
        # create-then-delete: the old one stays until the new one works.
        err = self._create(provider, change, inputs, progress, old=prior)
        if err is None and prior is not None:
            # Recorded under its own name until gone, so a crash cannot orphan it.
            err = self._delete(provider, prior.with_(name=f"{prior.name}~deposed"), progress)
        return err, "replace"

    def _create(self, provider, change: ResourceChange, inputs: dict, progress,
                old: ResourceState | None = None) -> str | None:
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
            if resp.id:  # partly made: keep it so that the next apply replaces it
                self._journal("done", pending.with_(id=resp.id, status="tainted"))
            else:
                self._journal("failed", pending, detail=resp.error)
                with self._lock:
                    self.resources.pop(change.name, None)
                if old is not None:  # create-before-destroy: the old one still serves
                    self._journal("done", old)
            return resp.error
        self._journal("done", pending.with_(id=resp.id, outputs=resp.outputs, status="ready"))
        return None

    def _update(self, provider, change: ResourceChange, prior: ResourceState | None,
                inputs: dict, progress) -> tuple[str | None, str]:
        assert prior is not None
        diff = provider.diff(DiffRequest(resource=ref(change.name, change.type, prior.id),
                                         prior_inputs=prior.inputs, prior_outputs=prior.outputs,
                                         desired_inputs=inputs))
        if diff.error:
            return diff.error, "update"
        if not diff.changes and not diff.note:
            # What was unknown at plan time turned out unchanged.
            self._journal("done", prior.with_(inputs=inputs, updated_at=_now()))
            return None, ""
        if diff.requires_replace:
            err = self._delete(provider, prior, progress)
            return (err or self._create(provider, change, inputs, progress)), "replace"
        self._journal("intent", prior.with_(status="pending", idempotency_key=prior.id))
        resp = provider.update(UpdateRequest(resource=ref(change.name, change.type, prior.id),
                                             prior_inputs=prior.inputs,
                                             prior_outputs=prior.outputs, inputs=inputs,
                                             changes=list(diff.changes)), progress)
        if resp.error:
            self._journal("done", prior)  # the old resource is still what is live
            return resp.error, "update"
        self._journal("done", prior.with_(inputs=inputs, outputs=resp.outputs or prior.outputs,
                                          id=resp.id or prior.id, status="ready",
                                          dependencies=tuple(change.dependencies),
                                          updated_at=_now()))
        return None, "update"

    def _delete(self, provider, prior: ResourceState | None, progress) -> str | None:
        if prior is None:
            return None
        self._journal("intent", prior.with_(status="pending"))
        resp = provider.delete(DeleteRequest(resource=ref(prior.name, prior.type, prior.id),
                                             inputs=prior.inputs, outputs=prior.outputs),
                               progress)
        if resp.error:
            self._journal("done", prior.with_(status="tainted"))
            return resp.error
        self._journal("deleted", prior)
        return None

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


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
