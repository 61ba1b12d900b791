"""The router's weighted split and the routing tables the endpoint gives it: pure code,
no cluster."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from mlform.providers.ray.serving.apps import owned, routing, table_apps
from mlform.providers.ray.serving.split import CANARY, STABLE, Split, traffic


def entry(app: str, weight: int = 100, shadow: bool = False, model: str = "") -> dict:
    return {"app": app, "model": model or f"ray://models/m/{app}", "weight": weight,
            "shadow": shadow}


def shares(table: dict, n: int = 20_000, seed: int = 3) -> Counter:
    split = Split(table, random.Random(seed))
    return Counter((r.track, r.variant) for r in (split.pick() for _ in range(n)))


@pytest.mark.parametrize(("table", "expected"), [
    pytest.param(routing({"a": entry("A", 70), "b": entry("B", 30)}),
                 {(STABLE, "a"): 0.7, (STABLE, "b"): 0.3}, id="weights-split-the-stable-set"),
    pytest.param(routing({"a": entry("A")}, {"a": entry("A2")}, 30),
                 {(STABLE, "a"): 0.7, (CANARY, "a"): 0.3},
                 id="canary-percent-splits-between-the-sets"),
    pytest.param(routing({"a": entry("A"), "s": entry("S", shadow=True)}),
                 {(STABLE, "a"): 1.0}, id="a-shadow-answers-no-request"),
    pytest.param(routing({"a": entry("A"), "z": entry("Z", 0)}),
                 {(STABLE, "a"): 1.0}, id="a-zero-weight-answers-no-request"),
    pytest.param(routing({"a": entry("A")}, {"a": entry("A2")}, 0),
                 {(STABLE, "a"): 1.0}, id="a-canary-at-0-percent-answers-none"),
])
def test_requests_split_by_weight(table, expected):
    seen = shares(table)
    total = sum(seen.values())
    assert set(seen) == set(expected)
    for key, share in expected.items():
        assert seen[key] / total == pytest.approx(share, abs=0.015)


def test_the_same_seed_gives_the_same_choices_and_no_request_is_sticky():
    table = routing({"a": entry("A", 50), "b": entry("B", 50)})
    one, other = Split(table, random.Random(9)), Split(table, random.Random(9))
    first = [one.pick().variant for _ in range(200)]
    again = [other.pick().variant for _ in range(200)]
    assert first == again
    # consecutive requests go either way: nothing sticks to the first choice
    assert {(x, y) for x, y in zip(first, first[1:], strict=False)} == \
        {("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")}


def test_a_key_gets_the_variant_the_core_assigns_it_on_every_router():
    from mlform.ml.experiments.assignment import assign

    table = routing({"a": entry("A", 30), "b": entry("B", 70), "s": entry("S", shadow=True)})
    # two routers with different generators: a restarted router or another replica
    one, other = Split(table, random.Random(1), "exp-1"), Split(table, random.Random(2), "exp-1")
    keys = [f"user-{i}" for i in range(300)]
    picked = [one.pick(k).variant for k in keys]
    assert picked == [other.pick(k).variant for k in keys] == \
        [assign("exp-1", k, {"a": 30, "b": 70}) for k in keys]
    assert set(picked) == {"a", "b"}
    # a request without the key, or a router with no experiment, is split at random
    assert {one.pick().variant for _ in range(50)} == {"a", "b"}
    assert len({Split(table, random.Random(i)).pick("user-1").variant for i in range(50)}) == 2


def test_during_a_rollout_the_canary_share_is_still_drawn_at_random():
    table = routing({"a": entry("A")}, {"a": entry("A2")}, 50)
    split = Split(table, random.Random(4), "exp-1")
    assert {split.pick("user-1").track for _ in range(100)} == {STABLE, CANARY}


def test_the_router_is_given_the_experiment_with_its_settings():
    from mlform.providers.ray.serving.apps import RouterSettings, router_config

    settings = RouterSettings(1.0, 10, 100, 1000, {"name": "exp-1", "key": "user_id"})
    config = router_config("s", "e", "/tmp/e", routing({"a": entry("A")}), settings)
    assert config["deployments"][0]["user_config"]["experiment"] == \
        {"name": "exp-1", "key": "user_id"}


def test_a_route_carries_its_sets_shadows():
    split = Split(routing({"a": entry("A"), "s": entry("S", shadow=True, model="m-s")}),
                  random.Random(0))
    assert split.pick().shadows == (("s", "S", "m-s"),)


def test_a_table_nothing_can_answer_is_refused():
    with pytest.raises(ValueError, match="no variant that is not a shadow"):
        Split(routing({"s": entry("S", shadow=True)}), random.Random(0))


def test_traffic_counts_a_variant_of_both_sets_once():
    assert traffic(routing({"a": entry("A", 60), "b": entry("B", 40)}, {"a": entry("A2")}, 50)) \
        == {"a": 80.0, "b": 20.0}


def test_owned_lists_routers_and_variants_no_router_routes_to():
    def app(name: str, stack: str, kind: str, table: dict | None = None) -> dict:
        config = {"name": name, "args": {"mlform_stack": stack, "mlform_endpoint": "e"},
                  "import_path": f"mlform.providers.ray.serving.app:{kind}_app"}
        if table is not None:
            config["deployments"] = [{"name": "router", "user_config": {"routing": table}}]
        return {"status": "RUNNING", "deployed_app_config": config}

    table = routing({"v": entry("mlform-s-e--v-1")})
    found = owned("s", {
        "mlform-s-e": app("mlform-s-e", "s", "router", table),
        "mlform-s-e--v-1": app("mlform-s-e--v-1", "s", "variant"),
        "mlform-s-e--v-0": app("mlform-s-e--v-0", "s", "variant"),
        # another stack whose name starts the same, and an application mlform did not make
        "mlform-s-x-e": app("mlform-s-x-e", "s-x", "router", table),
        "mlform-s-hand": {"status": "RUNNING", "deployed_app_config": {"name": "mlform-s-hand"}},
    })
    assert table_apps(table) == {"mlform-s-e--v-1"}
    assert found == [("endpoint", "mlform-s-e"),
                     ("endpoint", "mlform-s-e--v-0 (a variant no endpoint routes to)")]
