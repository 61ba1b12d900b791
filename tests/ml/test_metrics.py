"""mlform.ml.metrics: held-out metrics in numpy, to the digits scikit-learn gives."""

from __future__ import annotations

import numpy as np
import pytest
from mlform.ml.metrics import binary_auc, classification_metrics, regression_metrics


def _proba(rows: int, classes: int, rng, decimals: int | None = None):
    raw = rng.random((rows, classes))
    if decimals is not None:  # coarse scores: many ties
        raw = np.round(raw, decimals) + 1e-3
    return raw / raw.sum(axis=1, keepdims=True)


def _sklearn_classification(y, proba, classes):
    from sklearn import metrics

    labels = list(range(len(classes)))
    binary = len(classes) == 2
    index = np.array([classes.index(v) if v in classes else -1 for v in y])
    seen = index >= 0
    want = {"accuracy": metrics.accuracy_score(index, proba.argmax(axis=1)),
            "f1": metrics.f1_score(index, proba.argmax(axis=1), labels=labels,
                                   zero_division=0, average="binary" if binary else "macro"),
            "log_loss": metrics.log_loss(index[seen], np.clip(proba[seen], 1e-15, 1.0),
                                         labels=labels)}
    if binary:
        want["auc"] = metrics.roc_auc_score(index[seen] == 1, proba[seen, 1])
    else:
        want["auc"] = metrics.roc_auc_score(index[seen], proba[seen], multi_class="ovr",
                                            average="macro", labels=labels)
    return want


@pytest.mark.parametrize(("classes", "decimals", "unseen"), [
    pytest.param(["no", "yes"], None, False, id="binary"),
    pytest.param([0, 1], 1, False, id="binary-tied-scores"),
    pytest.param(["a", "b", "c"], None, False, id="three-classes"),
    pytest.param(["a", "b", "c", "d"], 1, True, id="four-classes-ties-and-an-unseen-label"),
])
def test_classification_metrics_match_scikit_learn(classes, decimals, unseen):
    rng = np.random.default_rng(len(classes))
    for _ in range(5):
        y = list(rng.choice(classes, 300))
        if unseen:
            y[:7] = ["never-seen"] * 7
        proba = _proba(300, len(classes), rng, decimals)
        got = classification_metrics(y, proba, classes)
        want = _sklearn_classification(y, proba, classes)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=1e-12, abs=1e-12), name


def test_f1_of_a_class_never_true_nor_predicted_is_zero_as_in_scikit_learn():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    assert classification_metrics([0, 0, 0], proba, [0, 1])["f1"] == 0.0


@pytest.mark.parametrize(("positive", "score", "auc"), [
    pytest.param([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], 1.0, id="perfect"),
    pytest.param([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4], 0.0, id="reversed"),
    pytest.param([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5, id="all-tied-count-half"),
    pytest.param([0, 1, 1], [0.2, 0.2, 0.9], 0.75, id="one-tie"),
])
def test_binary_auc(positive, score, auc):
    assert binary_auc(np.array(positive, bool), np.array(score)) == pytest.approx(auc)


@pytest.mark.parametrize(("y_true", "y_pred"), [
    pytest.param(np.arange(50.0), np.arange(50.0) * 1.1 - 3, id="linear-fit"),
    pytest.param(np.full(5, 2.0), np.full(5, 2.0), id="constant-target-perfect"),
    pytest.param(np.full(5, 2.0), np.arange(5.0), id="constant-target-missed"),
])
def test_regression_metrics_match_scikit_learn(y_true, y_pred):
    from sklearn import metrics

    got = regression_metrics(y_true, y_pred)
    assert got["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y_true, y_pred)))
    assert got["mae"] == pytest.approx(metrics.mean_absolute_error(y_true, y_pred))
    assert got["r2"] == pytest.approx(metrics.r2_score(y_true, y_pred))
