"""The A/B experiment statistics, assignment and verdict (mlform.ml.experiments).

The power and false-positive rates are measured by simulation: many experiments with
a planted difference (or none), each decided as `mlform experiment` decides it.
"""

from __future__ import annotations

import numpy as np
import pytest
from mlform.ml.experiments.assignment import assign, point
from mlform.ml.experiments.promotion import with_promoted_winner
from mlform.ml.experiments.statistics import fixed_horizon, required_per_arm, sequential
from mlform.ml.experiments.verdict import evaluate

RUNS = 400


def _bernoulli(rng, p: float, n: int) -> list[float]:
    return (rng.random(n) < p).astype(float).tolist()


def test_the_sample_size_is_the_textbook_one():
    # Two proportions 0.80 vs 0.85, alpha 0.05 two-sided, power 0.8: 906 per arm
    # (Fleiss' formula without continuity correction, as G*Power and statsmodels give).
    assert required_per_arm(0.80, 0.05, 0.05, 0.8) == 906
    assert required_per_arm(0.5, 0.05, 0.05, 0.8) > required_per_arm(0.8, 0.05, 0.05, 0.8)


@pytest.mark.slow  # hundreds of simulated experiments
def test_a_planted_five_point_difference_is_found_with_the_stated_power():
    rng = np.random.default_rng(7)
    n = required_per_arm(0.80, 0.05, 0.05, 0.8)
    found = sum(fixed_horizon(_bernoulli(rng, 0.80, n), _bernoulli(rng, 0.85, n), alpha=0.05,
                              power=0.8, mde=0.05, binary=True, baseline=0.8).status
                == "significant" for _ in range(RUNS))
    # power 0.8: over 400 runs, 320 expected, sd 8
    assert 0.74 <= found / RUNS <= 0.88


@pytest.mark.slow  # hundreds of simulated experiments
def test_an_aa_test_finds_a_difference_at_the_stated_false_positive_rate():
    rng = np.random.default_rng(11)
    n = required_per_arm(0.80, 0.05, 0.05, 0.8)
    false = sum(fixed_horizon(_bernoulli(rng, 0.8, n), _bernoulli(rng, 0.8, n), alpha=0.05,
                              power=0.8, mde=0.05, binary=True, baseline=0.8).status
                == "significant" for _ in range(RUNS))
    assert false / RUNS <= 0.08  # 0.05 expected, sd 0.011


def test_looking_before_the_horizon_decides_nothing():
    rng = np.random.default_rng(3)
    n = required_per_arm(0.80, 0.05, 0.05, 0.8)
    early = fixed_horizon(_bernoulli(rng, 0.5, n // 2), _bernoulli(rng, 0.95, n // 2),
                          alpha=0.05, power=0.8, mde=0.05, binary=True, baseline=0.8)
    assert early.status == "collecting" and early.p_value is None
    assert early.required_per_arm == n


def test_rows_past_the_horizon_do_not_change_the_verdict():
    rng = np.random.default_rng(5)
    n = required_per_arm(0.80, 0.05, 0.05, 0.8)
    a, b = _bernoulli(rng, 0.8, n), _bernoulli(rng, 0.85, n)
    at = fixed_horizon(a, b, alpha=0.05, power=0.8, mde=0.05, binary=True, baseline=0.8)
    later = fixed_horizon(a + [0.0] * 500, b + [1.0] * 500, alpha=0.05, power=0.8, mde=0.05,
                          binary=True, baseline=0.8)
    assert at == later


@pytest.mark.slow  # hundreds of simulated experiments
def test_the_sequential_test_keeps_its_false_positive_rate_when_looked_at_every_row():
    rng = np.random.default_rng(13)
    false = 0
    for _ in range(200):
        n = 1500
        a = list(zip(rng.random(n), _bernoulli(rng, 0.8, n), strict=True))
        b = list(zip(rng.random(n), _bernoulli(rng, 0.8, n), strict=True))
        false += sequential(a, b, alpha=0.05, mde=0.05).status == "significant"
    assert false / 200 <= 0.07


@pytest.mark.slow  # hundreds of simulated experiments
def test_the_sequential_test_finds_a_planted_difference():
    rng = np.random.default_rng(17)
    found = 0
    for _ in range(100):
        n = 3000
        a = list(zip(rng.random(n), _bernoulli(rng, 0.80, n), strict=True))
        b = list(zip(rng.random(n), _bernoulli(rng, 0.85, n), strict=True))
        found += sequential(a, b, alpha=0.05, mde=0.05).status == "significant"
    assert found >= 85


def test_assignment_is_sticky_and_split_by_weight():
    weights = {"a": 50, "b": 50}
    keys = [f"user-{i}" for i in range(4000)]
    first = [assign("exp1", k, weights) for k in keys]
    assert first == [assign("exp1", k, dict(weights)) for k in keys]
    assert 0.46 <= first.count("b") / len(keys) <= 0.54
    skewed = [assign("exp1", k, {"a": 90, "b": 10}) for k in keys]
    assert 0.08 <= skewed.count("b") / len(keys) <= 0.12
    other = [assign("exp2", k, weights) for k in keys]
    assert 0.4 <= np.mean([x != y for x, y in zip(first, other, strict=True)]) <= 0.6
    assert 0 <= point("e", "k") < 1


def _traffic(rng, accuracies: dict[str, float], n: int, outcome: bool = False):
    requests, feedback = [], []
    names = list(accuracies)
    for i in range(n):
        variant = names[i % len(names)]
        requests.append({"t": float(i), "id": f"r{i}", "variant": variant,
                         "predictions": [1, 0]})
        right = rng.random(2) < accuracies[variant]
        labels = [1 if right[0] else 0, 0 if right[1] else 1]
        entry = {"id": f"r{i}", "labels": labels}
        if outcome:
            entry = {"id": f"r{i}", "outcome": float(rng.normal(accuracies[variant], 1.0))}
        feedback.append(entry)
    return requests, feedback


EXPERIMENT = {"name": "e1", "metric": "accuracy", "test": "fixed_horizon", "alpha": 0.05,
              "power": 0.8, "mde": 0.05, "baseline": 0.8, "control": None}


def test_the_verdict_counts_each_labelled_instance_and_names_the_winner():
    rng = np.random.default_rng(1)
    requests, feedback = _traffic(rng, {"a": 0.80, "b": 0.90}, 2000)
    verdict = evaluate(EXPERIMENT, ["a", "b"], requests, feedback, now=1.0)
    assert verdict["status"] == "winner" and verdict["winner"] == "b"
    assert verdict["variants"]["a"]["requests"] == 1000
    assert verdict["variants"]["a"]["observations"] == 2000  # two instances a request
    assert verdict["comparisons"]["b"]["n_a"] == 906


def test_a_worse_challenger_makes_the_control_the_winner():
    rng = np.random.default_rng(2)
    requests, feedback = _traffic(rng, {"a": 0.90, "b": 0.80}, 2000)
    assert evaluate(EXPERIMENT, ["a", "b"], requests, feedback)["winner"] == "a"


def test_a_business_outcome_is_compared_by_its_mean():
    rng = np.random.default_rng(4)
    requests, feedback = _traffic(rng, {"a": 10.0, "b": 10.3}, 4000, outcome=True)
    experiment = {**EXPERIMENT, "metric": "outcome", "mde": 0.2, "baseline": None}
    verdict = evaluate(experiment, ["a", "b"], requests, feedback)
    assert verdict["status"] == "winner" and verdict["winner"] == "b"


def test_several_challengers_split_alpha():
    rng = np.random.default_rng(6)
    requests, feedback = _traffic(rng, {"a": 0.8, "b": 0.8, "c": 0.8}, 3000)
    verdict = evaluate(EXPERIMENT, ["a", "b", "c"], requests, feedback)
    assert set(verdict["comparisons"]) == {"b", "c"}


@pytest.mark.parametrize(("verdict", "promoted"), [
    ({"name": "e1", "status": "winner", "winner": "b", "summary": "s"}, True),
    ({"name": "old", "status": "winner", "winner": "b", "summary": "s"}, False),
    ({"name": "e1", "status": "collecting", "winner": None}, False),
])
def test_a_winner_is_promoted_only_for_the_same_experiment(verdict, promoted):
    desired = {"variants": {"a": {"model": "m/1", "weight": 50},
                            "b": {"model": "m/2", "weight": 50}},
               "experiment": {"name": "e1", "promote_winner": True}}
    got, why = with_promoted_winner(desired, {"experiment": verdict})
    if promoted:
        assert got["variants"]["b"]["weight"] == 100 and got["variants"]["a"]["weight"] == 0
        assert "variant 'b'" in why
    else:
        assert got is desired and why == ""


def test_each_variant_s_auc_is_computed_from_its_labelled_scores():
    requests = [{"t": float(i), "id": f"r{i}", "variant": "a" if i % 2 else "b",
                 "predictions": [1 if i % 4 < 2 else 0],
                 "scores": [[0.2, 0.8] if i % 4 < 2 else [0.9, 0.1]]} for i in range(40)]
    # a: its scores rank every positive above every negative; b: the labels are flipped
    feedback = [{"id": r["id"], "labels": [r["predictions"][0] if r["variant"] == "a"
                                           else 1 - r["predictions"][0]]} for r in requests]
    verdict = evaluate(EXPERIMENT, ["a", "b"], iter(requests), iter(feedback))
    assert verdict["variants"]["a"]["auc"] == 1.0
    assert verdict["variants"]["b"]["auc"] == 0.0
    assert verdict["variants"]["a"]["observations"] == 20  # the iterators were read once
