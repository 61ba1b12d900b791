"""Sticky assignment: the variant that answers a request with a given key.

The variant is a pure function of the experiment's name, the key and the weights, so
the same user gets the same variant across server restarts and across replicas (and
on every provider), with nothing stored: the key is hashed to a point in [0, 1) and
the point falls in one variant's share. Renaming the experiment reshuffles users,
which is what a new experiment wants.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def point(experiment: str, key: str) -> float:
    """Where `key` falls in [0, 1) for `experiment`: uniform over keys, fixed for each."""
    digest = hashlib.blake2b(f"{experiment}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def assign(experiment: str, key: str, weights: Mapping[str, float]) -> str:
    """The variant of `weights` (name -> weight > 0, in a fixed order) that `key` gets."""
    live = [(name, float(w)) for name, w in weights.items() if w > 0]
    if not live:
        raise ValueError("an experiment needs at least one variant with a weight above 0")
    total = sum(w for _, w in live)
    at = point(experiment, key) * total
    for name, weight in live:
        if at < weight:
            return name
        at -= weight
    return live[-1][0]
