"""Scoring predictions, in the forms an endpoint writes them, against feedback labels."""

from __future__ import annotations

import pytest
from mlform.ml.monitoring.performance import score


@pytest.mark.parametrize(("metric", "labels", "predictions", "expected"), [
    pytest.param("accuracy", [0, 1, 1, 0], [0, 1, 0, 0], 0.75, id="class labels"),
    pytest.param("accuracy", [0, 1, 1, 0], [0.2, 0.9, 0.4, 0.1], 0.75,
                 id="probabilities of class 1 cut at one half"),
    pytest.param("accuracy", [0, 2, 1], [[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]],
                 2 / 3, id="class probability lists"),
    pytest.param("auc", [0, 1, 1, 0], [0.2, 0.9, 0.4, 0.1], 1.0, id="auc from probabilities"),
    pytest.param("auc", [0, 1, 1, 0], [[0.8, 0.2], [0.1, 0.9], [0.3, 0.7], [0.6, 0.4]], 1.0,
                 id="auc from two-class probability lists"),
    pytest.param("f1", [0, 1, 1, 0], [0, 1, 0, 0], 2 / 3, id="binary f1"),
    pytest.param("rmse", [1.0, 2.0, 3.0], [1.0, 2.0, 5.0], (4 / 3) ** 0.5, id="rmse"),
    pytest.param("mae", [1.0, 2.0, 3.0], [1.0, 2.0, 5.0], 2 / 3, id="mae"),
])
def test_score(metric, labels, predictions, expected):
    assert score(metric, labels, predictions) == pytest.approx(expected)


def test_an_unknown_metric_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown performance metric 'recall': use one of "
                                         "accuracy, auc, f1, mae, r2, rmse"):
        score("recall", [1], [1])


def test_a_metric_undefined_on_the_labels_is_an_error_not_nan():
    with pytest.raises(ValueError, match="auc is undefined on these labels "
                                         "\\(1 distinct value\\(s\\)\\)"):
        score("auc", [1, 1, 1], [0.2, 0.7, 0.9])
