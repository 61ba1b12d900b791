"""Promoting an experiment's winner: what the endpoint serves once its verdict is in.

The spec keeps the experiment's weights (50/50, say); once the recorded verdict of
the same experiment names a winner and the spec asks for `promote_winner`, the
endpoint's desired variants are the winner at weight 100 and the others at 0, so the
plan (and `mlform watch`, which applies it) rolls the winner out through the
endpoint's rollout, and later plans keep it there. A new experiment name starts over.

`desired_inputs` is what both the planner and the applier call for every resource, so
that an apply realises exactly the inputs its plan showed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def desired_inputs(rtype: str, evaluated: dict[str, Any],
                   recorded: Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The inputs a resource of type `rtype` is to have: its `evaluated` spec inputs,
    with, for an endpoint, the winner its `recorded` provider outputs (None: not created
    yet) name promoted; and the reason the plan gives for it ("" when none)."""
    if rtype != "endpoint" or recorded is None:
        return evaluated, ""
    return with_promoted_winner(evaluated, recorded)


def with_promoted_winner(desired: dict[str, Any],
                         recorded: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """`desired` endpoint inputs with the winner promoted, and the reason in words;
    `desired` itself and "" when there is nothing to promote."""
    experiment = desired.get("experiment")
    verdict = recorded.get("experiment")
    variants = desired.get("variants")
    if not (isinstance(experiment, Mapping) and experiment.get("promote_winner")
            and isinstance(verdict, Mapping) and isinstance(variants, Mapping)):
        return desired, ""
    winner = verdict.get("winner")
    if verdict.get("name") != experiment.get("name") or verdict.get("status") != "winner" \
            or winner not in variants:
        return desired, ""
    promoted = {name: {**v, "weight": 100 if name == winner else 0}
                if isinstance(v, Mapping) and not v.get("shadow") else v
                for name, v in variants.items()}
    return {**desired, "variants": promoted}, (
        f"experiment {experiment['name']} found a winner: variant '{winner}' "
        f"({verdict.get('summary', '')}); promote_winner moves all traffic to it")
