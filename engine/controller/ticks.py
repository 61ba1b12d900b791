"""Ticking the controller resources of some types, with the state lock free while they
run, then recording what they returned onto the state as it is by then.

A result is recorded only if its resource is still the one that was ticked (same id
and inputs): what another command changed in between is never overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from ..capabilities import portable
from ..provider import TickRequest, TickResponse
from ..state.model import split_outputs

Say = Callable[[str], None]
Lock = Callable[[], AbstractContextManager]
"""A function giving a context that holds the state lock for one short step."""
Run = Callable[[Any, Any, TickRequest], TickResponse | None]
"""(provider, resource state, request) -> what the tick returned."""


@dataclass
class Tick:
    name: str
    response: TickResponse
    spec: Any | None
    """The resource as the spec declares it now (None: no longer in the spec)."""
    recorded: bool
    """Its new outputs are in state (or it had none to record)."""


@dataclass
class PassResult:
    breached: list[str] = field(default_factory=list)
    """Monitors whose latest evaluation is a breach (new in this pass or standing)."""
    errors: list[str] = field(default_factory=list)
    """Controllers that could not run, and retrains that stopped."""
    retrains: int = 0


def provider_tick(provider, res, req: TickRequest) -> TickResponse | None:
    return provider.tick(req)


def tick_all(session, types: tuple[str, ...], say: Say, lock: Lock, outcome: PassResult,
             run: Run = provider_tick) -> list[Tick]:
    """Tick every ready resource of `types` in state, with the lock free while they run;
    then record their new outputs under the lock."""
    from ..providerset import ref

    with lock():
        state = session.read_state()
    # Other resources' outputs as references see them; the ticked one's own, merged with
    # its provider's private data, as every provider call gets them.
    stack_outputs = {n: {**r.outputs, "id": r.id} for n, r in state.resources.items()}
    stack_inputs = {n: r.inputs for n, r in state.resources.items()}
    ticks: list[tuple[str, Any, TickResponse]] = []
    for name, res in sorted(state.resources.items()):
        if res.type not in types or res.status != "ready":
            continue
        req = TickRequest(resource=ref(name, res.type, res.id), inputs=res.inputs,
                          outputs=res.provider_outputs, stack_outputs=stack_outputs,
                          stack_inputs=stack_inputs, now=time.time())
        try:
            resp = run(session.providers.get(res.provider), res, req)
        except Exception as exc:  # one broken controller must not stop the others
            say(f"{name}: error: {exc}")
            outcome.errors.append(f"{name}: {exc}")
            continue
        if res.type == "monitor" and _breached(res, resp):
            outcome.breached.append(name)
        if resp is None:
            continue
        for line in resp.events:
            say(f"{name}: {line}")
        if resp.error:
            say(f"{name}: error: {resp.error}")
            outcome.errors.append(f"{name}: {resp.error}")
        if resp.outputs is not None:
            shared, _ = split_outputs(resp.outputs, portable(
                session.providers.get(res.provider), res.type))
            stack_outputs[name] = {**stack_outputs[name], **shared}
        ticks.append((name, res, resp))
    recorded = _record(session, [(n, r, t.outputs) for n, r, t in ticks
                                 if t.outputs is not None], say, lock)
    return [Tick(name, resp, session.stack.resources.get(name),
                 resp.outputs is None or name in recorded) for name, _, resp in ticks]


def _breached(res, resp: TickResponse | None) -> bool:
    """The monitor's latest evaluation is a breach: this tick's, or the standing one."""
    if resp is not None and resp.outputs is not None:
        return resp.breach is not None
    last = res.provider_outputs.get("last_evaluation") or {}
    return bool(last.get("breaches"))


def _record(session, results: list[tuple[str, Any, dict]], say: Say, lock: Lock) -> set[str]:
    """Write each result onto the state as it is now; returns the names recorded."""
    if not results:
        return set()
    recorded = set()
    with lock():
        current = session.read_state()
        changed = current
        for name, seen, outputs in results:
            now = current.resources.get(name)
            if now is None or now.id != seen.id or now.inputs != seen.inputs:
                say(f"{name}: changed by another command while it ran; its result is not "
                    "recorded")
                continue
            changed = changed.with_resource(now.with_provider_outputs(
                {**now.provider_outputs, **outputs},
                portable(session.providers.get(now.provider), now.type)))
            recorded.add(name)
        if changed is not current:
            session.backend.write(changed.next_serial())
    return recorded
