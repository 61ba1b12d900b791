"""Which variant answers a request: weighted random choice with a seeded generator,
or, for a request carrying an experiment's key, the variant that key is assigned to.

A request first falls on the canary set (with probability `canary_percent`) or
the stable set, then on one of that set's non-shadow variants in proportion to
its weight. The same seed gives the same sequence of choices, so tests and
replays see the same split.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

from mlform.ml.experiments.assignment import assign

from .config import ServingConfig, VariantSpec

STABLE = "stable"
CANARY = "canary"


@dataclass(frozen=True)
class Route:
    track: str
    """`stable` or `canary`: which variant set answered."""
    variant: str
    spec: VariantSpec
    shadows: tuple[tuple[str, VariantSpec], ...]
    """The shadow variants of that set, which get a copy of the request."""


class _WeightedSet:
    def __init__(self, track: str, variants: dict[str, VariantSpec]):
        live = [(n, v) for n, v in variants.items() if not v.shadow and v.weight > 0]
        self.track = track
        self.names = [n for n, _ in live]
        self.specs = [v for _, v in live]
        self.cumulative = list(itertools.accumulate(v.weight for v in self.specs))
        self.shadows = tuple((n, v) for n, v in variants.items() if v.shadow)

    def pick(self, rng: random.Random) -> Route:
        i = bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])
        i = min(i, len(self.names) - 1)
        return Route(self.track, self.names[i], self.specs[i], self.shadows)

    def assigned(self, experiment: str, key: str) -> Route:
        name = assign(experiment, key, dict(zip(self.names, (v.weight for v in self.specs),
                                                strict=True)))
        i = self.names.index(name)
        return Route(self.track, name, self.specs[i], self.shadows)


class Router:
    def __init__(self, config: ServingConfig, rng: random.Random):
        self.config = config
        self._rng = rng
        self._stable = _WeightedSet(STABLE, config.stable)
        self._canary = _WeightedSet(CANARY, config.canary) if config.canary else None
        self._canary_share = config.canary_percent / 100.0 if config.canary else 0.0

    def pick(self, key: str | None = None) -> Route:
        """The variant for a request; with an experiment and the request's key, the
        stable variant the key is assigned to (during a rollout, the canary's share of
        requests is still drawn at random)."""
        if self._canary and self._rng.random() < self._canary_share:
            return self._canary.pick(self._rng)
        if key is not None and self.config.experiment is not None:
            return self._stable.assigned(self.config.experiment.name, key)
        return self._stable.pick(self._rng)
