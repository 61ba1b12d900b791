from __future__ import annotations

import random
from collections import Counter

import pytest
from mlform.providers.local.serving.config import ServingConfig, VariantSpec
from mlform.providers.local.serving.router import CANARY, STABLE, Router


def variant(model: str, weight: int = 100, shadow: bool = False) -> VariantSpec:
    return VariantSpec(model=model, path="/nowhere", weight=weight, shadow=shadow)


def split(config: ServingConfig, n: int = 20_000, seed: int = 1) -> Counter:
    router = Router(config, random.Random(seed))
    return Counter((r.track, r.variant) for r in (router.pick() for _ in range(n)))


@pytest.mark.parametrize("config, expected", [
    pytest.param(ServingConfig(endpoint="e", stable={"a": variant("m1", 90),
                                                     "b": variant("m2", 10)}),
                 {(STABLE, "a"): 0.9, (STABLE, "b"): 0.1}, id="weights 90/10"),
    pytest.param(ServingConfig(endpoint="e", stable={"a": variant("m1", 1),
                                                     "b": variant("m2", 0),
                                                     "c": variant("m3", 3)}),
                 {(STABLE, "a"): 0.25, (STABLE, "c"): 0.75}, id="weight 0 gets nothing"),
    pytest.param(ServingConfig(endpoint="e", stable={"a": variant("m1")},
                               canary={"a": variant("m2")}, canary_percent=20),
                 {(STABLE, "a"): 0.8, (CANARY, "a"): 0.2}, id="canary 20 percent"),
])
def test_split_follows_the_weights(config: ServingConfig, expected: dict) -> None:
    counts = split(config)
    total = sum(counts.values())
    assert set(counts) == set(expected)
    for key, share in expected.items():
        assert counts[key] / total == pytest.approx(share, abs=0.015)


def test_the_same_seed_gives_the_same_choices() -> None:
    config = ServingConfig(endpoint="e", stable={"a": variant("m1", 50), "b": variant("m2", 50)})
    picks = [[r.variant for r in (Router(config, random.Random(7)).pick() for _ in range(50))]
             for _ in range(2)]
    assert picks[0] == picks[1]


def test_shadows_of_the_chosen_set_come_with_the_route() -> None:
    config = ServingConfig(endpoint="e", stable={"a": variant("m1"),
                                                 "s": variant("m2", shadow=True)},
                           canary={"a": variant("m3")}, canary_percent=50)
    router = Router(config, random.Random(3))
    routes = [router.pick() for _ in range(200)]
    assert {r.variant for r in routes} == {"a"}
    assert all([n for n, _ in r.shadows] == (["s"] if r.track == STABLE else [])
               for r in routes)
