"""Whether a resource whose provider changed is moved (its content carried over) or
replaced (re-created on the new provider), and the plan's change for a move.

A resource moves when its provider changed, both providers can move its type, it is
not tainted or `--replace`d, and nothing it depends on changed other than by moving
too: a training job whose data or settings changed re-runs, as it would on one
provider. An interrupted move is found again from the deposed entry it left, so the
next plan resumes it instead of re-creating the resource from nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..diagnostics import Diagnostic, MlformError
from ..plan.diffing import diff_values
from ..plan.model import Action, ResourceChange
from ..providerset import ProviderSet, ref
from ..spec.loader import Stack
from ..spec.refs import walk_refs
from ..state.model import ResourceState, State
from ..values import Unknown
from .verbs import ExportRequest

CARRIED = {"training_job": "copied, not re-run",
           "dataset": "copied by content digest and verified",
           "model": "registered on the target from the copied artifact with its recorded "
                    "gate results"}
REGATED = "registered on the target from the copied artifact; its gates run again there"
FREE_INPUTS = frozenset({"tags", "provider_options", "compute", "timeout", "description",
                         "on_move", "owner", "intended_use"})
"""Inputs whose change does not change the content a move carries."""


def move_source(state: State, name: str, rtype: str, provider: str) -> ResourceState | None:
    """The state entry `name` would move from: its own, recorded on another provider, or
    (when a move was interrupted after the old object was set aside) its deposed entry."""
    prior = state.resources.get(name)
    if prior is not None:
        return prior if prior.provider != provider and prior.type == rtype else None
    # the names the applier sets old objects aside under (`_free_name`): looked up, not
    # searched for, so planning many new resources against a large state stays linear
    n = 1
    while (other := state.resources.get(f"{name}~deposed{n if n > 1 else ''}")) is not None:
        if other.type == rtype and other.provider != provider:
            return other
        n += 1
    return None


def plan_move(stack: Stack, state: State, name: str, desired: dict[str, Any],
              providers: ProviderSet, planned: dict[str, ResourceChange],
              replace: tuple[str, ...], planned_outputs: dict[str, Any]
              ) -> ResourceChange | None:
    """The move of `name`, or None when it is a create or a replacement as before."""
    spec = stack.resources[name]
    source = move_source(state, name, spec.type, spec.provider)
    if source is None or source.status in ("tainted", "pending") or name in replace:
        return None
    try:
        old, new = providers.get(source.provider), providers.get(spec.provider)
    except MlformError:
        return None
    if not (old.can_move(spec.type) and new.can_move(spec.type)):
        return None
    if _content_changed(spec, source, desired, planned, state, planned_outputs):
        return None
    if spec.model.lifecycle.prevent_destroy:
        raise MlformError(Diagnostic(
            f"'{name}' moves from provider '{source.provider}' to '{spec.provider}', which "
            "deletes the old object, but lifecycle.prevent_destroy is set",
            location=stack.location(("resources", name, "lifecycle", "prevent_destroy")),
            help="keep the provider, or remove prevent_destroy deliberately for the move"))
    listed = old.export(ExportRequest(resource=ref(source.name.split("~", 1)[0], source.type,
                                                   source.id),
                                      inputs=source.inputs, outputs=source.provider_outputs))
    if listed.error:
        raise MlformError(Diagnostic(
            f"cannot plan the move of '{name}': {listed.error}",
            location=stack.location(("resources", name, "provider")), address=name,
            help=f"run `mlform refresh`, or `--replace {name}` to re-create it on "
                 f"'{spec.provider}' instead"))
    from mlform.ml.bundle import human_size

    regate = spec.type == "model" and bool(
        (desired.get("on_move") or {}).get("rerun_gates"))
    why = REGATED if regate else CARRIED.get(spec.type, "copied")
    reasons = [f"moves from provider '{source.provider}' to '{spec.provider}': {why}",
               f"copies {len(listed.files)} file(s), {human_size(listed.size)}"]
    if source.name != name:
        reasons.append(f"resumes an interrupted move (old object recorded as '{source.name}')")
    from ..spec.models import RESOURCE_OUTPUTS

    outputs: dict[str, Any] = {a: Unknown(f"{name}.{a}")
                               for a in RESOURCE_OUTPUTS.get(spec.type, {})}
    outputs["id"] = Unknown(f"{name}.id")
    outputs.update(planned_outputs)
    return ResourceChange(
        name=name, type=spec.type, provider=spec.provider, action=Action.MOVE,
        before=source.inputs, after=desired, reasons=tuple(reasons),
        planned_outputs=outputs, dependencies=tuple(spec.dependencies),
        moved_from=source.provider, move_source=source.name, copies=tuple(listed.files))


def _content_changed(spec, source: ResourceState, desired: dict[str, Any],
                     planned: dict[str, ResourceChange], state: State,
                     planned_outputs: dict[str, Any]) -> bool:
    """Whether the resource's content would differ from what the move carries: an input
    changed other than by an upstream's move, or (a dataset) the source's content."""
    if spec.type == "dataset":
        before = source.outputs.get("version")
        after = planned_outputs.get("version")
        if before is not None and after is not None and before != after:
            return True
    for path, _, _ in diff_values(source.inputs, desired):
        top = path.split(".")[0].split("[")[0]
        if top in FREE_INPUTS:
            continue
        if not _moved_upstream(spec.inputs.get(top), planned, state, source.provider):
            return True
    return False


def _moved_upstream(raw: Any, planned: dict[str, ResourceChange], state: State,
                    old_provider: str) -> bool:
    """Whether every resource `raw` references moved (in this plan, or earlier, when an
    interrupted move left it on its new provider): its change is its location's."""
    refs: list = []
    with contextlib.suppress(ValueError):
        refs = [r for _, r in walk_refs(raw) if not r.is_var]
    if not refs:
        return False
    for r in refs:
        up = planned.get(r.root)
        if up is not None and up.action is Action.MOVE:
            continue
        current = state.resources.get(r.root)
        if (up is None or up.action is Action.NOOP) and current is not None and \
                current.provider != old_provider:
            continue
        return False
    return True
