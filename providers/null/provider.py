"""A provider whose resources live in one JSON file per resource under its data dir.

Provider config (all optional):
    latency: seconds each create/update/delete takes (default 0)
    fail: list of resource names whose create/update fails
    fail_rate: probability that a create fails
    store: false keeps nothing on disk (pure in-memory; for benchmarks)

Per-resource knobs in `provider_options: {null: {latency: 2, fail: true}}`, and
`bad_output: true` (for the engine's tests): the resource's outputs come back
wrongly typed, as a buggy provider's would.
Every input is recorded; outputs are those `OUTPUTS` declares for the type, made
from a digest of the inputs. Each resource type it is given is accepted, so any
portable type can be exercised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import time
from pathlib import Path

from mlform.engine.capabilities import TypeSupport
from mlform.engine.provider import (
    ApplyResponse,
    CreateRequest,
    DeleteRequest,
    DeleteResponse,
    DiffRequest,
    DiffResponse,
    ObserveRequest,
    ObserveResponse,
    Progress,
    Provider,
    UpdateRequest,
    default_diff,
)
from mlform.engine.values import from_storable

OUTPUTS: dict[str, frozenset[str]] = {
    "dataset": frozenset({"uri", "version"}),
    "feature_view": frozenset({"uri", "version"}),
    "training_job": frozenset({"artifact"}),
    "model": frozenset({"uri", "name"}),
    "endpoint": frozenset({"url", "name"}),
    "batch_job": frozenset({"output_uri"}),
    "monitor": frozenset(),
    "retraining_policy": frozenset(),
}
"""What the null provider produces per type: references to anything else are refused
at plan, as they would be for a real provider that lacks them."""


class NullProvider(Provider):
    resource_types = frozenset(OUTPUTS)
    capabilities = {rtype: TypeSupport(outputs=made) for rtype, made in OUTPUTS.items()}

    def __init__(self, ctx):
        super().__init__(ctx)
        self._memory: dict[str, dict] = {}
        self._store = ctx.config.get("store", True)

    # --- knobs ------------------------------------------------------------------
    def _knob(self, inputs: dict, key: str, default=None):
        opts = (inputs.get("provider_options") or {}).get("null") or {}
        return opts.get(key, self.ctx.config.get(key, default))

    def _wait(self, inputs: dict, progress: Progress) -> None:
        latency = float(self._knob(inputs, "latency", 0) or 0)
        if latency:
            progress(f"working for {latency:g}s")
            time.sleep(latency)

    def _should_fail(self, name: str, inputs: dict) -> bool:
        if self._knob(inputs, "fail", False) is True:
            return True
        if name in (self.ctx.config.get("fail") or []):
            return True
        rate = float(self.ctx.config.get("fail_rate", 0) or 0)
        return bool(rate) and random.random() < rate

    # --- storage ----------------------------------------------------------------
    def _path(self, rid: str) -> Path:
        return self.ctx.data_dir / f"{rid}.json"

    def _save(self, rid: str, record: dict) -> None:
        if not self._store:
            self._memory[rid] = record
            return
        self.ctx.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._path(rid).with_suffix(".tmp")
        tmp.write_text(json.dumps(record, sort_keys=True, default=str))
        os.replace(tmp, self._path(rid))

    def _load(self, rid: str) -> dict | None:
        if not self._store:
            return self._memory.get(rid)
        try:
            return json.loads(self._path(rid).read_text())
        except (OSError, ValueError):
            return None

    def _remove(self, rid: str) -> None:
        if not self._store:
            self._memory.pop(rid, None)
            return
        with contextlib.suppress(FileNotFoundError):
            self._path(rid).unlink()

    # --- verbs ------------------------------------------------------------------
    def diff(self, req: DiffRequest) -> DiffResponse:
        replace_on = frozenset(self._knob(req.desired_inputs, "replace_on", []) or [])
        return default_diff(req, replace_on, {k: f"{k} cannot change in place"
                                              for k in replace_on})

    def observe(self, req: ObserveRequest) -> ObserveResponse:
        rid = req.resource.id or (req.idempotency_key and _id_for(req.idempotency_key))
        record = self._load(rid) if rid else None
        if record is None:
            return ObserveResponse(exists=False)
        return ObserveResponse(exists=True, id=rid, inputs=from_storable(record["inputs"]),
                               outputs=record["outputs"])

    def create(self, req: CreateRequest, progress: Progress) -> ApplyResponse:
        rid = _id_for(req.idempotency_key)
        existing = self._load(rid)
        if existing is not None:  # an interrupted apply already made it
            return ApplyResponse(id=rid, outputs=existing["outputs"])
        self._wait(req.inputs, progress)
        if self._should_fail(req.resource.name, req.inputs):
            return ApplyResponse(error=f"injected failure creating '{req.resource.name}'")
        outputs = _outputs(rid, req.resource.type, req.inputs)
        self._save(rid, {"inputs": _plain(req.inputs), "outputs": outputs})
        return ApplyResponse(id=rid, outputs=outputs)

    def update(self, req: UpdateRequest, progress: Progress) -> ApplyResponse:
        rid = req.resource.id or ""
        self._wait(req.inputs, progress)
        if self._should_fail(req.resource.name, req.inputs):
            return ApplyResponse(error=f"injected failure updating '{req.resource.name}'")
        outputs = _outputs(rid, req.resource.type, req.inputs)
        self._save(rid, {"inputs": _plain(req.inputs), "outputs": outputs})
        return ApplyResponse(id=rid, outputs=outputs)

    def delete(self, req: DeleteRequest, progress: Progress) -> DeleteResponse:
        self._wait(req.inputs, progress)
        if req.resource.id:
            self._remove(req.resource.id)
        return DeleteResponse()


def _id_for(key: str) -> str:
    return "null-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _plain(inputs: dict) -> dict:
    """What the null provider 'stores remotely': secrets only as a digest, like a cloud API."""
    from mlform.engine.values import to_storable

    return to_storable(inputs, "null-provider")


def _outputs(rid: str, rtype: str, inputs: dict) -> dict:
    digest = hashlib.sha256(json.dumps(_plain(inputs), sort_keys=True, default=str)
                            .encode()).hexdigest()[:12]
    attrs = {"uri": f"null://{rid}/{digest}", "version": digest, "artifact": f"null://{rid}/artifact/{digest}",
             "url": f"http://null.invalid/{rid}", "name": rid, "output_uri": f"null://{rid}/out/{digest}"}
    made = {k: v for k, v in attrs.items() if k in OUTPUTS.get(rtype, attrs)}
    if ((inputs.get("provider_options") or {}).get("null") or {}).get("bad_output"):
        # a provider bug: a number where a string belongs, a declared output left out
        made = {k: 12345 for k in list(made)[1:]}
    return made
