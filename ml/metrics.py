"""Held-out metrics of a model artifact: the numbers a run reports and gates judge.

Classification: accuracy, auc (binary; macro one-vs-rest for more classes), f1
(of the second class for a binary task; macro for more classes), log_loss.
Regression: rmse, mae, r2. A metric that is undefined on the rows at hand (auc
when the held-out rows hold a single class) is left out rather than reported as NaN.
"""

from __future__ import annotations

from typing import Any

CLASSIFICATION = ("accuracy", "auc", "f1", "log_loss")
REGRESSION = ("rmse", "mae", "r2")
# Computed in numpy, to the digits scikit-learn gives (tests/ml/test_metrics.py):
# importing scikit-learn took seconds of every training run's start.
GREATER_IS_BETTER = {"accuracy": True, "auc": True, "f1": True, "r2": True,
                     "log_loss": False, "rmse": False, "mae": False}


def main_metric(task: str, n_classes: int = 2) -> str:
    """The metric a robustness gate bounds when none is named."""
    if task == "regression":
        return "rmse"
    return "auc" if n_classes == 2 else "accuracy"


def evaluate(predictor, frame) -> dict[str, float]:
    """Metrics of `predictor` (a loaded artifact) on `frame`, which holds the target."""
    if predictor.target not in frame.columns:
        raise ValueError(f"the held-out rows lack the target column '{predictor.target}'")
    y_true = frame[predictor.target].tolist()
    if predictor.task == "classification":
        return classification_metrics(y_true, predictor.predict_proba(frame), predictor.classes)
    return regression_metrics(y_true, predictor.predict(frame))


def class_indices(labels, classes: list[Any]):
    """Each label's position in `classes`; -1 for a label the model never saw."""
    import numpy as np

    index = {c: i for i, c in enumerate(classes)}
    index.update({str(c): i for i, c in enumerate(classes)})
    return np.array([index.get(y, index.get(str(y), -1)) for y in labels])


def classification_metrics(y_true, proba, classes: list[Any]) -> dict[str, float]:
    import numpy as np

    proba = np.asarray(proba, dtype=np.float64)
    y = class_indices(y_true, classes)
    predicted = proba.argmax(axis=1)
    labels = list(range(len(classes)))
    binary = len(classes) == 2
    # rows whose label the model never saw count as wrong, but have no probability
    seen = y >= 0
    f1s = [_f1(y, predicted, label) for label in labels]
    out = {
        "accuracy": float(np.mean(y == predicted)) if len(y) else 0.0,
        "f1": f1s[1] if binary else float(np.mean(f1s)),
    }
    if seen.any():
        eps = np.finfo(np.float64).eps
        truth = np.clip(proba[seen, y[seen]], max(eps, 1e-15), 1 - eps)
        out["log_loss"] = float(-np.mean(np.log(truth)))
    present = set(y[seen].tolist())
    if binary and len(present) == 2:
        out["auc"] = binary_auc(y[seen] == 1, proba[seen, 1])
    elif not binary and present == set(labels):
        # one class against the rest, averaged over the classes (macro)
        out["auc"] = float(np.mean([binary_auc(y[seen] == k, proba[seen, k]) for k in labels]))
    return {k: out[k] for k in CLASSIFICATION if k in out}


def _f1(y, predicted, label: int) -> float:
    """F1 of one class; 0 where it is undefined (the class is neither true nor predicted)."""
    hit, said = y == label, predicted == label
    tp = int((hit & said).sum())
    wrong = int((said & ~hit).sum()) + int((hit & ~said).sum())
    return 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0


def binary_auc(positive, score) -> float:
    """Area under the ROC curve: the chance that a positive row scores above a negative
    one, ties counting half (the Mann-Whitney statistic from average ranks)."""
    import numpy as np

    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(score, kind="mergesort")
    ranked = score[order]
    # average rank (1-based) of each run of tied scores
    starts = np.r_[0, np.flatnonzero(np.diff(ranked)) + 1]
    ends = np.r_[starts[1:], len(ranked)]
    ranks = np.empty(len(ranked))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    import numpy as np

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    residual = float(np.sum((y_true - y_pred) ** 2))
    spread = float(np.sum((y_true - y_true.mean()) ** 2)) if len(y_true) else 0.0
    # a constant target: r2 is 1 for a perfect fit and 0 otherwise (as scikit-learn says)
    r2 = 1 - residual / spread if spread else (1.0 if residual == 0 else 0.0)
    return {"rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2))),
            "mae": float(np.mean(np.abs(y_true - y_pred))),
            "r2": float(r2)}
