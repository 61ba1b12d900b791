"""Model quality on live traffic: predictions scored against feedback labels.

A prediction is read as the endpoint wrote it:
  - a list of class probabilities: the class is the index of the largest, and
    auc uses the probabilities (the second one for two classes);
  - a number in [0, 1] that is not a whole number, with labels 0/1: a probability of
    class 1, the class is `p >= 0.5`;
  - anything else: the predicted class (classification) or value (regression).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

CLASSIFICATION = frozenset({"accuracy", "f1", "auc"})
REGRESSION = frozenset({"rmse", "mae", "r2"})
METRICS = CLASSIFICATION | REGRESSION


def score(metric: str, labels: list[Any], predictions: list[Any]) -> float:
    """`metric` of `predictions` against `labels`; ValueError when the metric is unknown
    or undefined on these labels (auc when only one class is present)."""
    if metric not in METRICS:
        raise ValueError(f"unknown performance metric '{metric}': use one of "
                         f"{', '.join(sorted(METRICS))}")
    with warnings.catch_warnings():
        # an undefined metric (auc of one class) is reported below, not warned about
        warnings.simplefilter("ignore")
        if metric in REGRESSION:
            value = _regression(metric, np.asarray(labels, dtype=float),
                                np.asarray(predictions, dtype=float))
        else:
            value = _classification(metric, np.asarray(labels), predictions)
    if not np.isfinite(value):
        raise ValueError(f"{metric} is undefined on these labels "
                         f"({len(set(map(str, labels)))} distinct value(s))")
    return value


def _regression(metric: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn import metrics

    if metric == "rmse":
        return float(np.sqrt(metrics.mean_squared_error(truth, predicted)))
    if metric == "mae":
        return float(metrics.mean_absolute_error(truth, predicted))
    return float(metrics.r2_score(truth, predicted))


def _classification(metric: str, truth: np.ndarray, predictions: list[Any]) -> float:
    from sklearn import metrics

    classes, scores = _classes_and_scores(truth, predictions)
    binary = set(np.unique(truth).tolist()) <= {0, 1}
    if metric == "accuracy":
        return float(metrics.accuracy_score(truth, classes))
    if metric == "f1":
        return float(metrics.f1_score(truth, classes, average="binary" if binary else "macro"))
    if scores.ndim == 2:
        return float(metrics.roc_auc_score(truth, scores, multi_class="ovr"))
    return float(metrics.roc_auc_score(truth, scores))


def _classes_and_scores(truth: np.ndarray, predictions: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    if predictions and all(isinstance(p, list) for p in predictions):
        probabilities = np.asarray(predictions, dtype=float)
        classes = probabilities.argmax(axis=1)
        return classes, probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities
    values = np.asarray(predictions)
    if values.dtype.kind == "f" and set(np.unique(truth).tolist()) <= {0, 1} \
            and ((values >= 0) & (values <= 1)).all() and (values != np.round(values)).any():
        return (values >= 0.5).astype(int), values
    return values, values


def predicted_classes(labels: list[Any], predictions: list[Any]) -> list[Any]:
    """The class each prediction stands for, read as `score` reads it (probabilities:
    the likeliest class; a fractional number with 0/1 labels: `p >= 0.5`)."""
    classes, _ = _classes_and_scores(np.asarray(labels), predictions)
    return classes.tolist()
