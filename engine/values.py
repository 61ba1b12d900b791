"""Special values that flow through evaluation: unknown-until-apply and sensitive.

`Unknown` stands for a value that only an apply will produce (the artifact of a
training job that must re-run). `Secret` wraps a sensitive value so that every
writer (state, plan file, audit log, terminal) can recognise and redact it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SENSITIVE_KEY = "$sensitive"
UNKNOWN_KEY = "$unknown"


@dataclass(frozen=True)
class Unknown:
    """A value known only after apply; `source` is the expression it comes from."""

    source: str = ""

    def __repr__(self) -> str:
        return "(known after apply)"


class Secret:
    """A sensitive value. It has no str() of its value: use `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: Any):
        self._value = value.reveal() if isinstance(value, Secret) else value

    def reveal(self) -> Any:
        return self._value

    def digest(self, salt: str) -> str:
        data = repr(self._value).encode()
        mac = hmac.new(salt.encode(), data, hashlib.sha256).hexdigest()[:32]
        return f"hmac-sha256:{salt}:{mac}"

    def matches(self, digest: str) -> bool:
        parts = digest.split(":")
        return len(parts) == 3 and hmac.compare_digest(self.digest(parts[1]), digest)

    def __repr__(self) -> str:
        return "(sensitive)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", repr(self._value)))


def contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


def contains_secret(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_secret(v) for v in value)
    return False


def secret_paths(value: Any, path: tuple = ()) -> frozenset[tuple]:
    """The path of every Secret in `value` (keys and list indexes): what a provider that
    must reveal its inputs may still show or store only as "(sensitive)"."""
    if isinstance(value, Secret):
        return frozenset({path})
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return frozenset()
    return frozenset(p for k, v in items for p in secret_paths(v, path + (k,)))


def reveal(value: Any) -> Any:
    """The value with every Secret replaced by its plain content (for providers only)."""
    if isinstance(value, Secret):
        return reveal(value.reveal())
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in value]
    return value


def to_storable(value: Any, salt: str) -> Any:
    """JSON-ready data: secrets become salted digests, unknowns become markers.

    Every writer of state, plan files and audit entries goes through this.
    """
    if isinstance(value, Secret):
        return {SENSITIVE_KEY: value.digest(salt)}
    if isinstance(value, StoredSecret):
        return {SENSITIVE_KEY: value.digest}
    if isinstance(value, Unknown):
        return {UNKNOWN_KEY: value.source}
    if isinstance(value, dict):
        return {str(k): to_storable(v, salt) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_storable(v, salt) for v in value]
    return value


def from_storable(value: Any) -> Any:
    """Inverse of `to_storable` for unknowns; sensitive markers stay as `StoredSecret`."""
    if isinstance(value, dict):
        if len(value) == 1 and SENSITIVE_KEY in value:
            return StoredSecret(value[SENSITIVE_KEY])
        if len(value) == 1 and UNKNOWN_KEY in value:
            return Unknown(value[UNKNOWN_KEY])
        return {k: from_storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_storable(v) for v in value]
    return value


@dataclass(frozen=True)
class StoredSecret:
    """A sensitive value read back from state: only its digest is known."""

    digest: str

    def __repr__(self) -> str:
        return "(sensitive)"


def same_value(stored: Any, current: Any) -> bool:
    """Compare a value from state with a freshly evaluated one, secrets by digest."""
    if isinstance(stored, StoredSecret):
        if isinstance(current, StoredSecret):
            return current.digest == stored.digest
        return isinstance(current, Secret) and current.matches(stored.digest)
    if isinstance(stored, Secret) and isinstance(current, Secret):
        return stored == current
    if isinstance(current, Secret):
        return False
    if isinstance(stored, dict) and isinstance(current, dict):
        return stored.keys() == current.keys() and all(
            same_value(stored[k], current[k]) for k in stored)
    if isinstance(stored, list) and isinstance(current, list | tuple):
        return len(stored) == len(current) and all(
            same_value(a, b) for a, b in zip(stored, current, strict=True))
    if isinstance(current, Unknown) or isinstance(stored, Unknown):
        return False
    return stored == current and type(stored) is type(current) or (
        isinstance(stored, int | float) and isinstance(current, int | float)
        and not isinstance(stored, bool) and not isinstance(current, bool)
        and float(stored) == float(current))


def display(value: Any) -> Any:
    """A value for showing to a person: secrets and unknowns as their labels."""
    if isinstance(value, Secret | StoredSecret):
        return "(sensitive)"
    if isinstance(value, Unknown):
        return "(known after apply)"
    if isinstance(value, dict):
        if len(value) == 1 and SENSITIVE_KEY in value:
            return "(sensitive)"
        if len(value) == 1 and UNKNOWN_KEY in value:
            return "(known after apply)"
        return {k: display(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [display(v) for v in value]
    return value
