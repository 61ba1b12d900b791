"""Cost gates and `better_than: champion` gates, judged by `mlform.ml.gates` on models
with chosen weights."""

from __future__ import annotations

import numpy as np
import pytest
from mlform.engine.spec.models import Gate
from mlform.ml.decision import cheapest_threshold
from mlform.ml.gates import (
    NO_CHAMPION_HERE,
    Champion,
    GateResult,
    evaluate_gates,
    metric_gates,
)


@pytest.fixture
def rows(labelled_rows):
    return labelled_rows


def brute_force(positive, scores, false_positive, false_negative):
    """Every candidate threshold tried row by row; the cheapest, ties to the highest."""
    candidates = sorted(set(scores.tolist()) | {np.nextafter(scores.max(), np.inf)},
                        reverse=True)
    best = None
    for t in candidates:
        fp = sum(1 for p, y in zip(scores, positive, strict=True) if p >= t and not y)
        fn = sum(1 for p, y in zip(scores, positive, strict=True) if p < t and y)
        cost = (false_positive * fp + false_negative * fn) / len(scores)
        if best is None or cost < best[1]:
            best = (t, cost)
    return best


@pytest.mark.parametrize("false_positive, false_negative", [
    (1, 1), (1, 20), (20, 1), (5, 3)],
    ids=["equal", "misses-cost-more", "alarms-cost-more", "close"])
def test_the_cost_gate_picks_the_threshold_a_brute_force_search_picks(
        models, rows, false_positive, false_negative):
    holdout = rows(seed=3)
    gate = Gate.model_validate({"cost": {"false_positive": false_positive,
                                         "false_negative": false_negative}, "max": 100})
    [result] = evaluate_gates([gate], models["worse"], holdout)
    scores = np.asarray(models["worse"].predict_proba(holdout))[:, 1]
    threshold, cost = brute_force(holdout["y"].to_numpy() == 1, scores, false_positive,
                                  false_negative)
    assert (result.threshold, result.measured) == (threshold, pytest.approx(cost, abs=1e-12))
    assert result.passed and result.kind == "cost"
    assert result.costs == {"false_positive": false_positive,
                            "false_negative": false_negative}
    assert result.gate == (f"expected_cost(fp={false_positive}, fn={false_negative}) "
                           "<= 100")


def test_a_cost_above_its_bound_fails_and_says_where_the_threshold_was(models, rows):
    gate = {"cost": {"false_positive": 1, "false_negative": 50}, "max": 0.001}
    [result] = evaluate_gates([gate], models["worse"], rows(seed=3))
    assert not result.passed
    assert result.detail.startswith(f"at threshold {result.threshold:.4f}: ")
    assert "per row at the default decision" in result.detail


def test_ties_go_to_the_highest_threshold_and_flagging_nothing_is_a_candidate():
    decision = cheapest_threshold([False, False, True], [0.9, 0.8, 0.1], 1, 1)
    # flagging nothing costs one miss; flagging all three costs two false alarms
    assert decision.threshold > 0.9 and decision.cost == pytest.approx(1 / 3)
    assert (decision.false_positives, decision.false_negatives) == (0, 1)


def test_a_cost_gate_needs_a_binary_classifier(tmp_path, rows):
    import torch
    from mlform.ml.artifact import load_predictor, save_model

    save_model(tmp_path, torch.nn.Linear(3, 1), {"task": "regression",
                                                 "features": ["strong", "weak", "noise"],
                                                 "target": "y"})
    [result] = evaluate_gates([{"cost": {"false_positive": 1, "false_negative": 1},
                                "max": 1}], load_predictor(tmp_path), rows())
    assert not result.passed
    assert result.detail == "a cost gate needs a binary classification model"


@pytest.mark.parametrize("candidate, champion, gate, passed", [
    ("worse", "good", {"metric": "auc", "better_than": "champion"}, False),
    ("good", "worse", {"metric": "auc", "better_than": "champion"}, True),
    ("good", "worse", {"metric": "auc", "better_than": "champion", "margin": 0.9}, False),
    ("good", "good", {"metric": "auc", "better_than": "champion"}, True),
    ("worse", "good", {"metric": "log_loss", "better_than": "champion"}, False),
    ("good", "worse", {"metric": "log_loss", "better_than": "champion"}, True),
    ("worse", "good", {"cost": {"false_positive": 1, "false_negative": 5},
                       "better_than": "champion"}, False),
    ("good", "worse", {"cost": {"false_positive": 1, "false_negative": 5},
                       "better_than": "champion"}, True),
    ("good", "worse", {"metric": "auc", "better_than": "champion", "min": 0.9999}, False),
], ids=["worse-auc-fails", "better-auc-passes", "margin-not-met", "equal-passes-at-margin-0",
        "worse-log-loss-fails", "better-log-loss-passes", "costlier-fails", "cheaper-passes",
        "bounds-hold-too"])
def test_better_than_champion(models, rows, candidate, champion, gate, passed):
    """Judged on the same held-out rows for both; the worse model leans on noise."""
    holdout = rows(seed=5)
    [result] = evaluate_gates([Gate.model_validate(gate)], models[candidate], holdout,
                              champion=Champion(models[champion], "version 1"))
    assert result.passed is passed, result.detail
    assert result.champion is not None
    assert result.detail == (f"champion (version 1) {result.champion:.4f}, "
                             f"candidate {result.measured:.4f}")


def test_better_than_labels_say_what_is_compared(models, rows):
    gates = [{"metric": "auc", "better_than": "champion", "margin": 0.01},
             {"metric": "rmse", "better_than": "champion"},
             {"cost": {"false_positive": 1, "false_negative": 5}, "better_than": "champion",
              "margin": 0.5}]
    labels = [Gate.model_validate(g) for g in gates]
    assert [r.gate for r in evaluate_gates(labels, models["good"], rows(), champion=None)] \
        == ["auc >= champion + 0.01", "rmse <= champion",
            "expected_cost(fp=1, fn=5) <= champion - 0.5"]


def test_with_no_champion_yet_there_is_nothing_to_beat(models, rows):
    [result] = evaluate_gates([{"metric": "auc", "better_than": "champion"}], models["worse"],
                              rows(), champion=None)
    assert result.passed and result.detail == "no champion to compare with yet"


def test_a_provider_that_cannot_compare_fails_the_gate_with_its_reason(models, rows):
    gate = {"metric": "auc", "better_than": "champion"}
    [by_default] = evaluate_gates([gate], models["good"], rows())
    [from_metrics] = metric_gates([gate], {"auc": 0.99}, "training job t")
    for result in (by_default, from_metrics):
        assert not result.passed and result.detail == NO_CHAMPION_HERE


def test_a_champion_that_cannot_score_the_rows_fails_the_gate(models, rows):
    [result] = evaluate_gates([{"metric": "auc", "better_than": "champion"}], models["good"],
                              rows(), champion=Champion(_RenamedPredictor(models["good"]),
                                                        "version 2"))
    assert not result.passed
    assert result.detail == ("the champion (version 2) cannot be measured on these held-out "
                             "rows: missing feature(s) 'missing'")


class _RenamedPredictor:
    """A champion trained on a feature the candidate's held-out rows lack."""

    def __init__(self, predictor):
        self._p = predictor
        self.task, self.classes, self.target = predictor.task, predictor.classes, "y"
        self.features = ["strong", "weak", "missing"]

    def predict_proba(self, frame):
        if "missing" not in frame:
            raise ValueError("missing feature(s) 'missing'")
        return self._p.predict_proba(frame)


@pytest.mark.parametrize("gate, message", [
    ({"metric": "auc", "cost": {"false_positive": 1, "false_negative": 1}, "max": 1},
     "a gate has exactly one of 'metric', 'fairness', 'robustness' or 'cost'"),
    ({"robustness": "gaussian_noise", "better_than": "champion", "max": 1},
     "'better_than' compares a 'metric' or a 'cost' with the champion"),
    ({"cost": {"false_positive": 1, "false_negative": 1}},
     "a gate needs a 'min' or a 'max' threshold (or 'better_than: champion')"),
], ids=["two-kinds", "better-than-robustness", "no-bound"])
def test_gate_spec_errors(gate, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Gate.model_validate(gate)


def test_other_gates_results_keep_their_shape(models, rows):
    """State and cards written before business gates existed read the same."""
    [metric, cost] = evaluate_gates(
        [{"metric": "auc", "min": 0.5}, {"cost": {"false_positive": 1, "false_negative": 1},
                                         "max": 1}], models["good"], rows())
    assert set(metric.to_dict()) == {"gate", "kind", "passed", "measured", "min", "max",
                                     "detail", "groups", "sensitive"}
    assert {"threshold", "costs"} <= set(cost.to_dict())
    assert GateResult.from_dict(cost.to_dict()) == cost
