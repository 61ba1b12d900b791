"""An experiment's verdict from a cloud endpoint's logs (mlform.ml.experiments.logged):
records name the deployment that answered, which is mapped to its variant before the
portable verdict reads them."""

from __future__ import annotations

import json

import pytest
from mlform.ml.experiments.logged import by_variant, json_lines, verdict
from mlform.ml.experiments.verdict import evaluate

EXPERIMENT = {"name": "ab", "metric": "accuracy", "test": "fixed_horizon", "alpha": 0.05,
              "power": 0.8, "mde": 0.4, "baseline": 0.5, "control": "current"}


def _logged(n: int) -> tuple[list[dict], list[dict]]:
    """`n` requests for each of deployed models 11 (current) and 22 (challenger), newest
    first as objects may list them, and labels: the challenger right 19 in 20, the
    control every other time; plus a request of a model no variant serves now."""
    requests, feedback = [], []
    for i in range(n):
        for deployed, right in (("11", i % 2 == 0), ("22", i % 20 != 19)):
            rid = f"{deployed}-{i}"
            requests.append({"t": 1000.0 + i, "id": rid, "variant": deployed,
                             "predictions": [1]})
            feedback.append({"id": rid, "labels": [1 if right else 0]})
    requests.append({"t": 999.0, "id": "old", "variant": "7", "predictions": [1]})
    feedback.append({"id": "old", "labels": [1]})
    return requests[::-1], feedback


def test_records_are_counted_for_the_variant_their_deployment_serves():
    requests, feedback = _logged(20)
    got = verdict(EXPERIMENT, ["current", "challenger"], requests, feedback,
                  {"11": "current", "22": "challenger"}, now=5.0)
    assert (got["status"], got["winner"]) == ("winner", "challenger")
    assert {v: row["requests"] for v, row in got["variants"].items()} == \
        {"current": 20, "challenger": 20}
    # the same as the local provider's verdict over records already named by variant
    named = sorted(by_variant(requests, {"11": "current", "22": "challenger"}),
                   key=lambda r: r["t"])
    assert got == evaluate(EXPERIMENT, ["current", "challenger"], named, feedback, now=5.0)


@pytest.mark.parametrize("variant_of, kept", [
    pytest.param({"11": "current"}, {"current-0"}, id="other deployments are left out"),
    pytest.param({}, set(), id="no deployment known: nothing counts"),
])
def test_only_known_deployments_count(variant_of, kept):
    requests = [{"t": 1.0, "id": "current-0", "variant": "11"},
                {"t": 2.0, "id": "shadow-0", "variant": "33"},
                {"t": 3.0, "id": "none"}]
    assert {r["id"] for r in by_variant(requests, variant_of)} == kept


def test_a_torn_or_foreign_line_is_skipped():
    data = (json.dumps({"id": "a"}) + "\n{\"id\": \"b\"\n[1, 2]\n\n"
            + json.dumps({"id": "c"})).encode()
    assert [r["id"] for r in json_lines(data)] == ["a", "c"]
    assert list(json_lines(None)) == []
