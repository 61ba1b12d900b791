"""What a provider may show of inputs it had to reveal: which of them were sensitive.

Providers validate and use revealed values (`values.reveal`); whatever they then
print or store (messages, gate results, model cards, platform metadata) must
say "(sensitive)" where the input held a secret. These helpers answer "which".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .values import Secret, contains_secret, reveal, secret_paths

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


def scrub(text: str, inputs: Any) -> str:
    """`text` with the plain form of every secret in `inputs` replaced by "(sensitive)".

    The engine's backstop for what providers say (errors, progress): a provider builds
    its messages from revealed inputs, and one message that forgot to hide a secret
    must not reach the terminal, the audit log or an incident. Numbers are matched
    whole (0.85 is hidden, 0.8512 is left alone); text wherever it stands.
    """
    if not text:
        return text
    for plain, whole in sorted(_plain_forms(inputs), key=lambda f: -len(f[0])):
        if whole:
            text = re.sub(rf"(?<![\w.]){re.escape(plain)}(?!\w|\.\d)", HIDDEN, text)
        else:
            text = text.replace(plain, HIDDEN)
    return text


def _plain_forms(value: Any, inside: bool = False) -> set[tuple[str, bool]]:
    """(text, match whole) of each secret's plain value, as messages would print it."""
    if isinstance(value, Secret):
        return _plain_forms(value.reveal(), True)
    if isinstance(value, dict):
        return {f for v in value.values() for f in _plain_forms(v, inside)}
    if isinstance(value, list | tuple):
        return {f for v in value for f in _plain_forms(v, inside)}
    if not inside or value is None or isinstance(value, bool):
        return set()
    if isinstance(value, int | float):
        return {(str(value), True), (format(value, "g"), True)}
    text = str(value)
    return {(text, False)} if text else set()
