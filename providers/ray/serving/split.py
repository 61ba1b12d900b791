"""Which variant answers a request: the router's weighted split, with a seeded generator.

A routing table is what the router's `user_config` holds (see `apps.routing`):

    {"stable": {variant: {"app", "model", "weight", "shadow"}},
     "canary": {variant: {...}} or None, "canary_percent": 0..100}

A request first falls on the canary set (with probability `canary_percent`) or the
stable set, then on one of that set's non-shadow variants in proportion to its
weight; the set's shadow variants get a copy. The same seed gives the same choices.
A request carrying an experiment's key is answered by the stable variant the key is
assigned to (`mlform.ml.experiments.assignment`, as on `local`: a pure function of the
experiment's name, the key and the weights, so the same key gets the same variant after
the router restarts); during a rollout the canary's share is still drawn at random.
Other requests are split anew.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from typing import Any

from mlform.ml.experiments.assignment import assign

STABLE = "stable"
CANARY = "canary"


@dataclass(frozen=True)
class Route:
    track: str
    """`stable` or `canary`: which variant set answered."""
    variant: str
    app: str
    """The Serve application of the variant's deployment."""
    model: str
    shadows: tuple[tuple[str, str, str], ...]
    """(variant, app, model) of the set's shadow variants, which get a copy."""


class _WeightedSet:
    def __init__(self, track: str, variants: dict[str, dict[str, Any]]):
        live = [(n, v) for n, v in variants.items() if not v.get("shadow") and v["weight"] > 0]
        if not live:
            raise ValueError(f"the {track} variants have no variant that is not a shadow "
                             "and has a weight above 0")
        self.track = track
        self.names = [n for n, _ in live]
        self.variants = [v for _, v in live]
        self.cumulative = list(itertools.accumulate(v["weight"] for v in self.variants))
        self.shadows = tuple((n, v["app"], v["model"]) for n, v in variants.items()
                             if v.get("shadow"))

    def pick(self, rng: random.Random) -> Route:
        i = bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])
        i = min(i, len(self.names) - 1)
        chosen = self.variants[i]
        return Route(self.track, self.names[i], chosen["app"], chosen["model"], self.shadows)

    def assigned(self, experiment: str, key: str) -> Route:
        name = assign(experiment, key, {n: v["weight"] for n, v in
                                        zip(self.names, self.variants, strict=True)})
        chosen = self.variants[self.names.index(name)]
        return Route(self.track, name, chosen["app"], chosen["model"], self.shadows)


class Split:
    """The routing table, ready to pick from; ValueError for a table nothing can answer."""

    def __init__(self, table: dict[str, Any], rng: random.Random,
                 experiment: str | None = None):
        """`experiment`: the name of the endpoint's experiment, which keys are assigned
        by (None: no experiment)."""
        self.table = table
        self.experiment = experiment
        self._rng = rng
        self._stable = _WeightedSet(STABLE, table["stable"])
        canary = table.get("canary")
        self._canary = _WeightedSet(CANARY, canary) if canary else None
        self._canary_share = float(table.get("canary_percent", 0)) / 100.0 if canary else 0.0

    def pick(self, key: str | None = None) -> Route:
        """The variant for a request; with an experiment and the request's key, the
        stable variant the key is assigned to."""
        if self._canary and self._rng.random() < self._canary_share:
            return self._canary.pick(self._rng)
        if key is not None and self.experiment is not None:
            return self._stable.assigned(self.experiment, key)
        return self._stable.pick(self._rng)

    def stable_routes(self) -> list[Route]:
        """Each stable variant that takes requests, as a route: asked whether instances
        a canary variant refused fit the endpoint's contract."""
        return [Route(STABLE, n, v["app"], v["model"], ()) for n, v in
                zip(self._stable.names, self._stable.variants, strict=True)]


def traffic(table: dict[str, Any]) -> dict[str, float]:
    """Percent of requests answered by each non-shadow variant (as the `traffic`
    output writes it: a variant of both sets counts once, with both shares)."""
    canary = table.get("canary") or {}
    share = float(table.get("canary_percent", 0)) if canary else 0.0
    shares: dict[str, float] = {}
    for variants, percent in ((table["stable"], 100.0 - share), (canary, share)):
        total = sum(v["weight"] for v in variants.values() if not v.get("shadow"))
        for name, v in variants.items():
            if not v.get("shadow") and percent > 0 and total > 0:
                shares[name] = shares.get(name, 0.0) + percent * v["weight"] / total
    return {name: round(p, 2) for name, p in shares.items()}
