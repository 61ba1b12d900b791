"""mlform.ml.fairness measures what fairlearn measures, without fairlearn."""

import numpy as np
import pytest
from mlform.ml import fairness

fair = pytest.importorskip("fairlearn.metrics")

FAIRLEARN = {"demographic_parity_difference": fair.demographic_parity_difference,
             "demographic_parity_ratio": fair.demographic_parity_ratio,
             "equalized_odds_difference": fair.equalized_odds_difference}


def rows(seed: int, n: int, groups: str, p_true: float, p_pred: float):
    rng = np.random.default_rng(seed)
    return (rng.random(n) < p_true, rng.random(n) < p_pred,
            rng.choice(list(groups), n).astype(str))


@pytest.mark.parametrize("kind", sorted(FAIRLEARN))
@pytest.mark.parametrize("seed, n, groups, p_true, p_pred", [
    (0, 200, "ab", 0.5, 0.5),
    (1, 50, "abc", 0.3, 0.6),
    (2, 12, "abcd", 0.1, 0.2),    # small groups: some have no positives at all
    (3, 30, "ab", 0.0, 0.4),      # no actual positives anywhere
], ids=["balanced", "three-groups", "sparse", "no-positives"])
def test_the_measures_equal_fairlearns(kind, seed, n, groups, p_true, p_pred):
    y_true, y_pred, g = rows(seed, n, groups, p_true, p_pred)
    expected = FAIRLEARN[kind](y_true.astype(int), y_pred.astype(int), sensitive_features=g)
    assert fairness.measure(kind, y_true, y_pred, g) == pytest.approx(expected, abs=1e-12)


def test_a_ratio_with_nothing_selected_is_undefined_as_in_fairlearn():
    y_true, _, g = rows(0, 20, "ab", 0.5, 0.5)
    nothing = np.zeros(20, dtype=bool)
    assert np.isnan(fairness.measure("demographic_parity_ratio", y_true, nothing, g))
    assert np.isnan(fair.demographic_parity_ratio(y_true.astype(int), nothing.astype(int),
                                                  sensitive_features=g))


def test_by_group_equals_fairlearns_metric_frame():
    from sklearn.metrics import accuracy_score

    y_true, y_pred, g = rows(4, 60, "abc", 0.4, 0.5)
    frame = fair.MetricFrame(metrics={"selection_rate": fair.selection_rate,
                                      "accuracy": accuracy_score, "count": fair.count},
                             y_true=y_true.astype(int), y_pred=y_pred.astype(int),
                             sensitive_features=g)
    expected = {str(k): {m: float(v) for m, v in row.items()}
                for k, row in frame.by_group.to_dict(orient="index").items()}
    measured = fairness.by_group(y_true, y_pred, g)
    assert list(measured) == list(expected)
    for group, values in expected.items():
        assert measured[group] == pytest.approx(values, abs=1e-12)
