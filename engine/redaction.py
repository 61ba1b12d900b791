"""What a provider may show of inputs it had to reveal: which of them were sensitive.

Providers validate and use revealed values (`values.reveal`); whatever they then
print or store (messages, gate results, model cards, platform metadata) must
say "(sensitive)" where the input held a secret. These helpers answer "which".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .values import contains_secret, reveal, secret_paths

HIDDEN = "(sensitive)"


def sensitive_fields(inputs: dict[str, Any], names: Iterable[str]) -> frozenset[str]:
    """Those of the top-level input `names` whose value holds a secret."""
    return frozenset(n for n in names if contains_secret(inputs.get(n)))


def sensitive_gate_bounds(inputs: dict[str, Any]) -> frozenset[tuple[int, str]]:
    """(gate index, "min" or "max") of each bound of a model's gates that is a secret, or
    sits in a gate or a list of gates that is one."""
    secrets = secret_paths(inputs.get("gates"))
    count = len(reveal(inputs.get("gates")) or [])
    return frozenset((i, bound) for i in range(count) for bound in ("min", "max")
                     if {(), (i,), (i, bound)} & secrets)
