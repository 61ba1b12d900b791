"""Carrying out one planned move: export from the old provider, import on the new one.

The steps and what the journal holds after each, so that an apply killed anywhere
resumes without a duplicate or an orphan:

1. the old object is recorded under its deposed name (`<name>~deposed`): from here
   on the next plan finds the move from that entry (`decide.move_source`), and the
   old object is deleted only by the deposed delete, after its successor exists and
   everything that used it changed;
2. the intent to import, with its idempotency key: an import that may have happened
   is found by observe(key) and adopted, or repeated (imports are idempotent);
3. export into a fresh staging directory, import (the target copies the files and
   verifies their digests), then `done` with the new provider's record.

A failed export or import records nothing new; the old object goes back under its
own name, as the failed create of a create-then-delete replacement does.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..capabilities import output_error
from ..plan.model import ResourceChange
from ..provider import Progress, Provider
from ..providerset import ref
from ..state.model import ResourceState
from .verbs import ExportRequest, ImportRequest

if TYPE_CHECKING:
    from ..apply.applier import Applier


class MoveStep:
    def __init__(self, applier: Applier, target: Provider, change: ResourceChange,
                 inputs: dict[str, Any], progress: Progress):
        self.a = applier
        self.target = target
        self.change = change
        self.inputs = inputs
        self.progress = progress

    def run(self) -> str | None:
        from ..apply.applier import _now, _recorded, idempotency_key

        a, change = self.a, self.change
        source = a.resources.get(change.move_source)
        if source is None:
            return (f"the old '{change.name}' on provider '{change.moved_from}' is no longer "
                    "in state: there is nothing to move from; run `mlform plan` again")
        own = change.move_source == change.name
        if own:
            source = source.with_(name=a._deposed[change.name])
            a._journal("done", source)
        key = idempotency_key(a.state.stack, change.name, self.inputs, a.state.salt)
        pending = ResourceState(name=change.name, type=change.type, provider=change.provider,
                                id=None, inputs=self.inputs, outputs={},
                                dependencies=tuple(change.dependencies), status="pending",
                                idempotency_key=key, provider_type=a._ptype(change.provider),
                                updated_at=_now())
        a._journal("intent", pending)
        staging = Path(tempfile.mkdtemp(prefix=f"mlform-move-{change.name}-"))
        try:
            error, resp = self._copy(source, staging / "bundle", key)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if error is not None or resp is None:
            a._journal("failed", pending, detail=error or "")
            with a._lock:
                a.resources.pop(change.name, None)
            if own:  # the old object is whole: back under its own name
                a._journal("deleted", source)
                a._journal("done", source.with_(name=change.name))
            return error
        bad = output_error(self.target, change.provider, change.type, change.name,
                           resp.outputs)
        status = "tainted" if bad else "ready"
        a._journal("done", _recorded(pending, self.target, resp.outputs, id=resp.id,
                                     status=status))
        if bad:
            return bad
        a._record(change.name, "move", resp.id, change.provider)
        return None

    def _copy(self, source: ResourceState, staging: Path, key: str):
        change = self.change
        base = change.name
        old = self.a.providers.get(source.provider)
        self.progress(f"exporting from provider '{source.provider}'")
        exported = old.export(ExportRequest(resource=ref(base, source.type, source.id),
                                            inputs=source.inputs,
                                            outputs=source.provider_outputs,
                                            staging=staging))
        if exported.error:
            return f"export from provider '{source.provider}' failed: {exported.error}", None
        self.progress(f"importing on provider '{change.provider}' "
                      f"({len(exported.files)} file(s))")
        resp = self.target.import_(ImportRequest(resource=ref(base, change.type),
                                                 inputs=self.inputs,
                                                 bundle=exported.bundle or staging,
                                                 idempotency_key=key), self.progress)
        if resp.error:
            return f"import on provider '{change.provider}' failed: {resp.error}", None
        return None, resp
